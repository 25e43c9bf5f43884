"""No cap reaches the web port's access log (issue #15): Tahoe's censoring, and more."""

import http.client
import os
import time
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from twisted.web import resource

from shoal.caps.censor import censor_caps
from shoal.testing import reactor_thread
from shoal.testing.reactor_thread import reactor
from shoal.web.access_log import censor_uri
from shoal.web.spool import ShoalSite

WRITECAP = "URI:DIR2:ovjlmqyxiqamcaaoqq4iagvysi:pgx3ovnp5nyxjzr7ii3xbvsspxjb3ucihlm4uszbdmu5o4lvuawa"


class Anything(resource.Resource):
    isLeaf = True

    def render(self, request):
        return b"ok"


def test_a_real_site_logs_requests_without_caps(tmp_path):
    log_path = str(tmp_path / "access.log")
    site = ShoalSite(Anything(), logPath=log_path)
    port = reactor_thread.call(lambda: reactor.listenTCP(0, site, interface="127.0.0.1"))
    try:
        paths = [f"/uri/{quote(WRITECAP)}/sub?t=json", f"/uri/{WRITECAP}", f"/file/{quote(WRITECAP)}/@@named=/x",
                 f"/named/{WRITECAP}", f"/uri?uri={quote(WRITECAP)}&t=json", f"/URI/{WRITECAP}",
                 f"/uri/x?t=relink&to_dir={quote(WRITECAP)}/sub&from_name=a", "/statistics?t=json"]
        for path in paths:
            conn = http.client.HTTPConnection("127.0.0.1", port.getHost().port, timeout=10)
            conn.request("GET", path)
            assert conn.getresponse().read() == b"ok"
            conn.close()
        deadline = time.monotonic() + 10
        while True:
            text = open(log_path, "rb").read() if os.path.exists(log_path) else b""
            if text.count(b"\n") >= len(paths) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        reactor_thread.call(port.stopListening)
    lines = text.decode().splitlines()
    assert len(lines) == len(paths)
    assert "pgx3ovnp" not in text.decode() and "ovjlmqyx" not in text.decode()
    assert lines[0].startswith("web: 127.0.0.1 GET /uri/[CENSORED]?t=json 200")
    assert lines[4].startswith("web: 127.0.0.1 GET /uri?uri=[CENSORED]&t=json 200")
    assert "t=relink" in lines[6] and "from_name=a" in lines[6]
    assert lines[7].startswith("web: 127.0.0.1 GET /statistics?t=json 200")


caps = st.builds(lambda kind, body: f"URI:{kind}:{body}", st.sampled_from(["DIR2", "CHK", "SSK", "MDMF", "DIR2-RO"]),
                 st.text("abcdefghijklmnopqrstuvwxyz234567:", min_size=20, max_size=80))


@given(cap=caps, prefix=st.sampled_from(["/uri/", "/file/", "/named/", "/uri?x=", "/x?a=1&to_dir=", "/"]),
       encode=st.booleans(), tail=st.text("abc/?=&", max_size=10))
def test_censor_uri_never_keeps_a_cap(cap, prefix, encode, tail):
    text = quote(cap, safe="") if encode else cap
    out = censor_uri((prefix + text + tail).encode("ascii"))
    assert cap.split(":", 2)[2][:20].encode() not in out


@given(cap=caps, encode=st.booleans(), around=st.tuples(st.text(max_size=10), st.text(max_size=10)))
def test_censor_caps_in_any_text(cap, encode, around):
    text = quote(cap, safe="") if encode else cap
    out = censor_caps(around[0] + " " + text + " " + around[1])
    assert cap.split(":", 2)[2][:20] not in out.replace(around[0], "").replace(around[1], "")
    assert "URI:[CENSORED]" in out


def test_censor_caps_keeps_other_text():
    line = f"Traceback: KeyError: '{WRITECAP}' in /uri/{quote(WRITECAP, safe='')}/x (URI:LIT:nbswy3dp)"
    assert censor_caps(line) == "Traceback: KeyError: 'URI:[CENSORED]' in /uri/URI:[CENSORED]/x (URI:[CENSORED])"
