"""Failures found while walking a path answer Tahoe 1.20's HTML ErrorPage whatever the
client accepts (web/common.py exception_to_child -> twisted's resource.ErrorPage), and
the CLI reads the one line of text back out of such a page."""

import warnings

from hypothesis import given
from hypothesis import strategies as st
from twisted.web import resource
from twisted.web.test.requesthelper import DummyRequest

from shoal.cli.webclient import error_text, one_line
from shoal.dirnode.errors import NoSuchChildError
from shoal.web.common import WalkError, WebError, error_page, render_sync

HTML = "text/html; charset=utf-8"


def twisted_error_page(code: int, brief: str, detail: str) -> bytes:
    """What Tahoe 1.20 sends: twisted's own (deprecated) ErrorPage, rendered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        page = resource.ErrorPage(code, brief, detail)
    request = DummyRequest([b""])
    body = page.render(request)
    assert request.responseCode == code
    assert request.responseHeaders.getRawHeaders(b"content-type") == [HTML.encode()]
    return body


def answer(exc: Exception, accept: bytes | None) -> tuple[int, str, bytes]:
    request = DummyRequest([b""])
    if accept is not None:
        request.requestHeaders.setRawHeaders(b"accept", [accept])

    def fail() -> bytes:
        raise exc

    body = render_sync(request, fail)
    [ctype] = request.responseHeaders.getRawHeaders(b"content-type")
    return request.responseCode, ctype.decode(), body


def test_the_page_is_twisteds_error_page_byte_for_byte():
    for code, brief, detail in ((404, "Error", "No such child: kid"),
                                (400, "Files have no children named 'x'", "no details"),
                                (409, "Unable to create directory 'f': a file was in the way", "no details")):
        assert error_page(code, brief, detail) == twisted_error_page(code, brief, detail)


def test_a_walk_failure_is_html_whatever_the_client_accepts():
    for accept in (None, b"*/*", b"text/plain", b"application/json", b"text/html"):
        code, ctype, body = answer(WalkError(NoSuchChildError("kid")), accept)
        assert (code, ctype) == (404, HTML)
        assert body == twisted_error_page(404, "Error", "No such child: kid")
    code, ctype, body = answer(WalkError.page(400, "Files have no children named 'x'"), b"*/*")
    assert (code, ctype) == (400, HTML) and body == twisted_error_page(400, "Files have no children named 'x'",
                                                                       "no details")


def test_a_rendering_failure_stays_plain_text_for_scripts():
    code, ctype, body = answer(WebError("GET directory: bad t=bogus"), b"*/*")
    assert (code, ctype, body) == (400, "text/plain; charset=utf-8", b"GET directory: bad t=bogus\n")


def test_markup_in_the_text_is_escaped():
    code, ctype, body = answer(WalkError(NoSuchChildError("<script>alert(1)</script>&")), b"*/*")
    assert b"<script>" not in body and b"No such child: &lt;script&gt;alert(1)&lt;/script&gt;&amp;" in body


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=200)


@given(texts)
def test_the_cli_shows_the_pages_text(text):
    # the detail of an "Error" page (its brief when the detail is blank), or the
    # brief of a page with "no details"
    assert error_text(error_page(404, "Error", text), HTML) == (one_line(text) or "Error")
    if one_line(text) not in ("", "Error"):
        assert error_text(error_page(400, text, "no details"), HTML) == one_line(text)
    assert error_text(text.encode(), "text/plain; charset=utf-8") == one_line(text)


@given(st.binary(max_size=300))
def test_the_cli_survives_any_html_body(raw):
    line = error_text(raw, "text/html")
    assert "\n" not in line and len(line) <= 2000
