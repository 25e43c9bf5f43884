"""NURL parsing and the certificate pin, checked against the cryptography library."""

import base64
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.nurl import Nurl, NurlError, format_nurl, is_http_nurl, parse_nurl, spki_hash

PIN = "gJeL9kmUqSyJQNyCa5-qVlOqdeBkwt2sySy3lZCQQHA"  # 43 url-safe base64 characters
TAHOE_EXAMPLE = f"pb://{PIN}@127.0.0.1:34567/vsaj6bxzmb2zi4t3tfqtw2h3lndqcrl5#v=1"


def test_parses_a_tahoe_nurl():
    nurl = parse_nurl(TAHOE_EXAMPLE)
    assert nurl == Nurl("127.0.0.1", 34567, PIN.encode(), b"vsaj6bxzmb2zi4t3tfqtw2h3lndqcrl5")
    assert str(nurl) == TAHOE_EXAMPLE


@pytest.mark.parametrize("text", [
    TAHOE_EXAMPLE.replace("#v=1", ""),  # Foolscap FURL shape
    TAHOE_EXAMPLE.replace("pb://", "pb+tor://"),
    TAHOE_EXAMPLE.replace(":34567", ":0"),
    TAHOE_EXAMPLE.replace(":34567", ":70000"),
    TAHOE_EXAMPLE.replace(PIN, PIN[:-1]),
    TAHOE_EXAMPLE.replace("127.0.0.1:34567", "127.0.0.1"),
    "",
])
def test_refuses_what_is_not_an_https_nurl(text):
    assert not is_http_nurl(text)
    with pytest.raises(NurlError):
        parse_nurl(text)


hosts = st.one_of(
    st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}\Z"),
    st.ip_addresses().map(str),
)


@given(
    host=hosts,
    port=st.integers(1, 65535),
    pin=st.binary(min_size=32, max_size=32).map(lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")),
    swissnum=st.from_regex(r"\A[a-z2-7]{1,40}\Z").map(str.encode),
)
def test_format_then_parse_is_identity(host, port, pin, swissnum):
    nurl = Nurl(host, port, pin, swissnum)
    assert parse_nurl(format_nurl(nurl)) == nurl


@given(st.text(max_size=120))
def test_parse_never_fails_otherwise(text):
    try:
        parse_nurl(text)
    except NurlError:
        pass


def _certificate(key, with_version: bool = True) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(12345).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("make", [
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ec.generate_private_key(ec.SECP256R1()),
    ed25519.Ed25519PrivateKey.generate,
])
def test_pin_is_rfc7469_spki_hash(make):
    key = make()
    der = _certificate(key)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert spki_hash(der) == base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=")


@given(st.binary(max_size=300))
def test_malformed_certificates_are_nurl_errors(junk):
    try:
        spki_hash(junk)
    except NurlError:
        pass


def test_truncated_certificate_refused():
    der = _certificate(ec.generate_private_key(ec.SECP256R1()))
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(NurlError):
            spki_hash(der[:cut])
