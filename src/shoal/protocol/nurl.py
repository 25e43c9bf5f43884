"""NURLs: how Tahoe-LAFS 1.20 names an HTTPS storage server, and the certificate pin in them.

A NURL is `pb://<SPKI hash>@<host>:<port>/<swissnum>#v=1` (Tahoe's
docs/specifications/url.rst; `pb+tor://` for Tor, which shoal does not
speak). The SPKI hash is RFC 7469's: SHA-256 of the DER SubjectPublicKeyInfo
of the server's certificate, in URL-safe base64 without padding. The
swissnum is the same secret as the storage FURL's; clients send it, base64
encoded, in the Authorization header.

Pure: the SubjectPublicKeyInfo is found by walking the certificate's DER
(Certificate -> tbsCertificate -> its seventh field, after the optional
version), with no X.509 library.
"""

import base64
import hashlib
import re

import attrs

from shoal.errors import Fault, ShoalError

__all__ = ["Nurl", "NurlError", "format_nurl", "is_http_nurl", "parse_nurl", "spki_hash"]

_NURL = re.compile(
    r"\Apb://(?P<pin>[A-Za-z0-9_-]{43})@(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})"
    r"/(?P<swissnum>[A-Za-z0-9_.~-]+)#v=1\Z"
)


class NurlError(ShoalError):
    """A NURL or certificate that cannot be used (whoever announced it is at fault)."""

    fault = Fault.SERVER


@attrs.frozen
class Nurl:
    host: str  # a name, IPv4 address, or IPv6 address without brackets
    port: int
    spki_hash: bytes  # as in the NURL: URL-safe base64 of SHA-256, unpadded (43 bytes)
    swissnum: bytes  # the path segment's ASCII text

    def __str__(self) -> str:
        return format_nurl(self)


def is_http_nurl(text: str) -> bool:
    """An HTTPS storage NURL shoal can use (pb://...#v=1 over TCP)."""
    try:
        parse_nurl(text)
    except NurlError:
        return False
    return True


def parse_nurl(text: str) -> Nurl:
    m = _NURL.match(text)
    if m is None or not 0 < int(m.group("port")) < 65536:
        raise NurlError(f"not an HTTPS storage NURL (pb://<pin>@<host>:<port>/<swissnum>#v=1): {text[:40]!r}...")
    host = m.group("host").strip("[]")
    return Nurl(host, int(m.group("port")), m.group("pin").encode("ascii"), m.group("swissnum").encode("ascii"))


def format_nurl(nurl: Nurl) -> str:
    host = f"[{nurl.host}]" if ":" in nurl.host else nurl.host
    return f"pb://{nurl.spki_hash.decode('ascii')}@{host}:{nurl.port}/{nurl.swissnum.decode('ascii')}#v=1"


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at pos."""
    if pos + 2 > len(der):
        raise NurlError("certificate DER is truncated")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise NurlError("certificate DER has a bad length")
        length = int.from_bytes(der[pos:pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise NurlError("certificate DER is truncated")
    return tag, pos, pos + length


def certificate_spki(der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo inside a DER X.509 certificate."""
    tag, start, _ = _tlv(der, 0)
    if tag != 0x30:
        raise NurlError("certificate DER is not a SEQUENCE")
    tag, pos, end = _tlv(der, start)  # tbsCertificate
    if tag != 0x30:
        raise NurlError("certificate has no tbsCertificate")
    tag, _, after = _tlv(der, pos)
    if tag == 0xA0:  # [0] version
        pos = after
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, pos = _tlv(der, pos)
        if pos > end:
            raise NurlError("certificate tbsCertificate is truncated")
    tag, _, spki_end = _tlv(der, pos)
    if tag != 0x30 or spki_end > end:
        raise NurlError("certificate has no SubjectPublicKeyInfo")
    return der[pos:spki_end]


def spki_hash(der_certificate: bytes) -> bytes:
    """The pin of a DER certificate, as NURLs carry it."""
    digest = hashlib.sha256(certificate_spki(der_certificate)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=")
