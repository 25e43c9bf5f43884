"""HTTP storage protocol edges: routes, paths, Authorization, X-Tahoe-Authorization, content types."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding.base32 import b2a
from shoal.protocol.http_errors import HttpRequestError
from shoal.protocol.http_storage import (
    Endpoint,
    Route,
    Secret,
    accepts_cbor,
    authorization_header,
    check_authorization,
    check_request_content_type,
    parse_secrets,
    path_for,
    route,
    secret_header,
    secret_headers,
)

SI = bytes(range(16))
SI_TEXT = b2a(SI)


def status_of(call, *args):
    with pytest.raises(HttpRequestError) as caught:
        call(*args)
    return caught.value.status


@pytest.mark.parametrize("method,path,expected", [
    ("GET", "/storage/v1/version", Route(Endpoint.VERSION)),
    ("POST", f"/storage/v1/immutable/{SI_TEXT}", Route(Endpoint.IMMUTABLE_ALLOCATE, SI)),
    ("GET", f"/storage/v1/immutable/{SI_TEXT}/shares", Route(Endpoint.IMMUTABLE_LIST, SI)),
    ("PATCH", f"/storage/v1/immutable/{SI_TEXT}/7", Route(Endpoint.IMMUTABLE_WRITE, SI, 7)),
    ("GET", f"/storage/v1/immutable/{SI_TEXT}/255", Route(Endpoint.IMMUTABLE_READ, SI, 255)),
    ("PUT", f"/storage/v1/immutable/{SI_TEXT}/0/abort", Route(Endpoint.IMMUTABLE_ABORT, SI, 0)),
    ("POST", f"/storage/v1/immutable/{SI_TEXT}/3/corrupt", Route(Endpoint.IMMUTABLE_CORRUPT, SI, 3)),
    ("POST", f"/storage/v1/mutable/{SI_TEXT}/read-test-write", Route(Endpoint.MUTABLE_READ_TEST_WRITE, SI)),
    ("GET", f"/storage/v1/mutable/{SI_TEXT}/shares", Route(Endpoint.MUTABLE_LIST, SI)),
    ("GET", f"/storage/v1/mutable/{SI_TEXT}/1", Route(Endpoint.MUTABLE_READ, SI, 1)),
    ("POST", f"/storage/v1/mutable/{SI_TEXT}/1/corrupt", Route(Endpoint.MUTABLE_CORRUPT, SI, 1)),
    ("PUT", f"/storage/v1/lease/{SI_TEXT}", Route(Endpoint.LEASE, SI)),
])
def test_every_endpoint_routes_and_its_path_builds_back(method, path, expected):
    assert route(method, path.encode()) == expected
    assert route(method.encode(), path) == expected
    assert path_for(expected.endpoint, expected.storage_index, expected.share_number) == path
    assert expected.endpoint.method == method


@pytest.mark.parametrize("path", [
    "/storage/v1/versions", "/storage/v2/version", "/version", "/storage/v1/version/",
    f"/storage/v1/immutable/{SI_TEXT.upper()}",  # base32 is lower case
    f"/storage/v1/immutable/{SI_TEXT[:-1]}",
    f"/storage/v1/immutable/{SI_TEXT[:-1]}b",  # stray trailing bits: not canonical
    f"/storage/v1/immutable/{SI_TEXT}/256",  # no such share number
    f"/storage/v1/immutable/{SI_TEXT}/-1",
    f"/storage/v1/immutable/{SI_TEXT}/12345678901",
    f"/storage/v1/lease/{SI_TEXT}/x",
    "/storage/v1/" + "a" * 5000,
])
def test_unknown_paths_are_404(path):
    assert status_of(route, "GET", path.encode()) == 404
    assert status_of(route, "PUT", path.encode()) == 404


def test_non_ascii_path_is_404():
    assert status_of(route, "GET", "/storage/v1/vérsion".encode()) == 404


def test_known_path_with_other_method_is_405():
    assert status_of(route, "POST", b"/storage/v1/version") == 405
    assert status_of(route, "DELETE", f"/storage/v1/immutable/{SI_TEXT}/1".encode()) == 405


@given(st.binary(max_size=120), st.sampled_from(["GET", "PUT", "POST", "PATCH", "X"]))
def test_any_path_routes_or_is_refused_with_404_or_405(path, method):
    try:
        route(method, b"/storage/v1/" + path)
    except HttpRequestError as error:
        assert error.status in (404, 405)


def test_path_for_refuses_bad_parameters():
    with pytest.raises(ValueError):
        path_for(Endpoint.IMMUTABLE_READ, SI, 256)
    with pytest.raises(ValueError):
        path_for(Endpoint.IMMUTABLE_READ, SI, None)
    with pytest.raises(ValueError):
        path_for(Endpoint.LEASE, b"short")


def test_authorization_header_is_tahoes():
    # Tahoe: b"Tahoe-LAFS " + b64encode(swissnum).strip()
    assert authorization_header(b"abcswiss") == b"Tahoe-LAFS YWJjc3dpc3M="
    check_authorization([b"Tahoe-LAFS YWJjc3dpc3M="], b"abcswiss")
    check_authorization([b"Tahoe-LAFS YWJjc3dpc3M=", b"other"], b"abcswiss")


@pytest.mark.parametrize("values,status", [
    (None, 401), ([], 401), ([b"Tahoe-LAFS d3Jvbmc="], 401), ([b"Basic YWJjc3dpc3M="], 401),
    ([b"Tahoe-LAFS YWJjc3dpc3M"], 401), ([b"other", b"Tahoe-LAFS YWJjc3dpc3M="], 401),
    (["Tahoe-LAFS é".encode()], 400),
])
def test_bad_authorization(values, status):
    assert status_of(check_authorization, values, b"abcswiss") == status


RENEW, CANCEL, UPLOAD, WE = b"r" * 32, b"c" * 32, b"u" * 32, b"w" * 32
ALL = {Secret.LEASE_RENEW: RENEW, Secret.LEASE_CANCEL: CANCEL, Secret.UPLOAD: UPLOAD}


def test_secret_headers_are_tahoes_and_parse_back():
    assert secret_header(Secret.LEASE_RENEW, RENEW) == b"lease-renew-secret " + base64.b64encode(RENEW)
    headers = secret_headers(ALL)
    assert [h.split(b" ")[0] for h in headers] == [b"lease-renew-secret", b"lease-cancel-secret", b"upload-secret"]
    assert parse_secrets(headers, Endpoint.IMMUTABLE_ALLOCATE.secrets) == ALL
    assert parse_secrets(list(reversed(headers)), Endpoint.IMMUTABLE_ALLOCATE.secrets) == ALL
    assert parse_secrets(None, Endpoint.VERSION.secrets) == {}
    short_upload = [secret_header(Secret.UPLOAD, b"x")]  # upload secrets are opaque: any length
    assert parse_secrets(short_upload, Endpoint.IMMUTABLE_WRITE.secrets) == {Secret.UPLOAD: b"x"}


@pytest.mark.parametrize("values", [
    [],  # missing
    [secret_header(Secret.UPLOAD, UPLOAD)],  # some missing
    secret_headers(ALL) + [secret_header(Secret.WRITE_ENABLER, WE)],  # one too many
    secret_headers(ALL) + [secret_header(Secret.UPLOAD, UPLOAD)],  # repeated
    [b"lease-renew-secret " + base64.b64encode(b"short"), *secret_headers(ALL)[1:]],  # wrong length
    [b"lease-renew-secret !!!!", *secret_headers(ALL)[1:]],  # not base64
    [b"lease-renew-secret", *secret_headers(ALL)[1:]],  # no value
    [b"lease-renew-secret ", *secret_headers(ALL)[1:]],  # empty
    [b"renew-secret " + base64.b64encode(RENEW), *secret_headers(ALL)[1:]],  # unknown kind
    [b"upload-secret " + base64.b64encode(b"u" * 5000), *secret_headers(ALL)[:2]],  # too long
    [secret_header(Secret.UPLOAD, UPLOAD)] * 20,
])
def test_bad_secrets_are_400_and_never_echoed(values):
    with pytest.raises(HttpRequestError) as caught:
        parse_secrets(values, Endpoint.IMMUTABLE_ALLOCATE.secrets)
    assert caught.value.status == 400
    for secret in (RENEW, CANCEL, UPLOAD):
        assert base64.b64encode(secret).decode() not in str(caught.value)
        assert secret.decode() not in str(caught.value)


@given(st.lists(st.binary(max_size=80), max_size=6))
def test_any_secret_headers_parse_or_are_400(values):
    try:
        parse_secrets(values, Endpoint.LEASE.secrets)
    except HttpRequestError as error:
        assert error.status == 400


def test_content_types():
    check_request_content_type(None)
    check_request_content_type([b"application/cbor"])
    check_request_content_type([b"Application/CBOR; charset=binary"])
    assert status_of(check_request_content_type, [b"application/json"]) == 415
    assert accepts_cbor(None)
    assert accepts_cbor([b"application/cbor"])
    assert accepts_cbor([b"*/*"])
    assert accepts_cbor([b"text/html, application/cbor;q=0.5"])
    assert not accepts_cbor([b"application/json"])
    assert not accepts_cbor([b"application/cbor;q=0"])
    assert not accepts_cbor([b"application/cbor;q=nan"])
