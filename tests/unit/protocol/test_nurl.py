"""NURLs: Tahoe 1.20's text form, SPKI hashes of a Foolscap certificate, and rejection of bad text."""

import pathlib

import pytest
from cryptography import x509
from hyperlink import DecodedURL
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.nurl import Nurl, NurlError, nurls_for_location, spki_hash

CERT_PEM = (pathlib.Path(__file__).parents[2] / "vectors" / "foolscap-node-cert.pem").read_bytes()
# computed by Tahoe 1.20's allmydata.storage.http_common.get_spki_hash over CERT_PEM
TAHOE_HASH = "ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E"
# allmydata.storage.http_server.build_nurl("127.0.0.1", 1234, "abcswiss", cert).to_text()
TAHOE_NURL = "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/abcswiss#v=1"
TAHOE_TOR_NURL = "pb+tor://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@x.onion:1234/abcswiss#v=1"


def test_spki_hash_matches_tahoe_for_pem_der_and_loaded_certificates():
    cert = x509.load_pem_x509_certificate(CERT_PEM)
    from cryptography.hazmat.primitives.serialization import Encoding

    assert spki_hash(CERT_PEM) == TAHOE_HASH
    assert spki_hash(cert.public_bytes(Encoding.DER)) == TAHOE_HASH
    assert spki_hash(cert) == TAHOE_HASH


def test_format_matches_tahoe_build_nurl():
    assert Nurl(TAHOE_HASH, "127.0.0.1", 1234, "abcswiss").to_text() == TAHOE_NURL
    assert Nurl(TAHOE_HASH, "x.onion", 1234, "abcswiss", tor=True).to_text() == TAHOE_TOR_NURL
    assert Nurl.parse(TAHOE_TOR_NURL).tor


def test_repr_hides_the_swissnum():
    assert "abcswiss" not in repr(Nurl.parse(TAHOE_NURL))


hashes = st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True)
hostnames = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
nurls = st.builds(
    Nurl, hashes, hostnames, st.integers(1, 65535), st.from_regex(r"[a-z2-7]{1,40}", fullmatch=True),
    tor=st.booleans(),
)


@given(nurls)
def test_round_trip_and_hyperlink_reads_it_as_tahoe_does(nurl):
    text = nurl.to_text()
    assert Nurl.parse(text) == nurl
    # Tahoe's client reads NURLs with hyperlink: user = hash, path[0] = swissnum
    url = DecodedURL.from_text(text)
    assert url.scheme == nurl.scheme
    assert url.user == nurl.spki_hash
    assert url.host == nurl.host
    assert url.port == nurl.port
    assert url.path == (nurl.swissnum,)
    assert url.fragment == "v=1"


@pytest.mark.parametrize("text", [
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/abcswiss",  # no v=1: a FURL
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@tcp:127.0.0.1:1234/abcswiss",
    "https://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/abcswiss#v=1",
    "pb://short@127.0.0.1:1234/abcswiss#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:0/abcswiss#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:99999/abcswiss#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1/abcswiss#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/a/b#v=1",
    "pb://ukaDJEUKhBRs_2erASlWkFyfJG6bMxa5hgkf_KyoM4E@127.0.0.1:1234/abc#v=2",
    "",
    "x" * 2000,
])
def test_bad_nurls_are_refused_without_revealing_the_swissnum(text):
    with pytest.raises(NurlError) as caught:
        Nurl.parse(text)
    assert "abcswiss" not in str(caught.value)


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused(text):
    try:
        Nurl.parse(text)
    except NurlError:
        pass


def test_nurls_for_location_follow_tahoe_hint_rules():
    found = nurls_for_location(
        ["tcp:example.org:1234,tcp:10.0.0.1:1234", "tor:abc.onion:80", "tor:notonion:80",
         "i2p:xyz.i2p:1", "example.org:5", "tcp:example.org:1234"],
        TAHOE_HASH, "abcswiss",
    )
    assert [n.to_text() for n in found] == [
        f"pb://{TAHOE_HASH}@example.org:1234/abcswiss#v=1",
        f"pb://{TAHOE_HASH}@10.0.0.1:1234/abcswiss#v=1",
        f"pb+tor://{TAHOE_HASH}@abc.onion:80/abcswiss#v=1",
    ]
