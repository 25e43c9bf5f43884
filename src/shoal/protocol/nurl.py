"""NURLs, the addresses of HTTP storage servers, as Tahoe-LAFS 1.20 writes and reads them.

``pb://<SPKI hash>@<host>:<port>/<swissnum>#v=1`` (``pb+tor://`` for an
onion host). The SPKI hash pins the server's TLS key: URL-safe base64,
without padding, of the SHA-256 of the DER SubjectPublicKeyInfo of its
certificate (RFC 7469; Tahoe's http_common.get_spki_hash). The swissnum is
the one in the storage FURL, and is what the client presents in its
``Authorization`` header. The fragment ``v=1`` says the NURL is for HTTP.

Tahoe 1.20 (protocol_switch.py) announces one NURL per ``tcp:`` or ``tor:``
location hint of the Tub, on the Tub's own port, and none for other hints.
"""

import base64
import hashlib
import re
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shoal.errors import Fault, ShoalError

SCHEME = "pb"
TOR_SCHEME = "pb+tor"
VERSION_FRAGMENT = "v=1"
SPKI_HASH_LENGTH = 43  # base64 of 32 bytes, unpadded
MAX_NURL_LENGTH = 1000


class NurlError(ShoalError):
    """Text that is not an HTTP storage NURL (from an announcement: the announcing server's fault)."""

    fault = Fault.SERVER


_HASH = re.compile(r"[A-Za-z0-9_-]{43}")
_SWISSNUM = re.compile(r"[A-Za-z0-9._~-]{1,200}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def _check_hash(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValueError(f"SPKI hash {value!r:.60} is not 43 URL-safe base64 characters")


def _check_host(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not (_HOSTNAME.fullmatch(value) or (":" in value and _IPV6.fullmatch(value))):
        raise ValueError(f"host {value!r:.60} is not a host name or IP address")


def _check_port(instance: object, attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"port {value!r} is not in 1..65535")


def _check_swissnum(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _SWISSNUM.fullmatch(value):
        raise ValueError("swissnum must be 1..200 URL-safe characters")


@attrs.frozen(repr=False)
class Nurl:
    """One NURL. Its repr hides the swissnum (a secret)."""

    spki_hash: str = attrs.field(validator=_check_hash)
    host: str = attrs.field(validator=_check_host)
    port: int = attrs.field(validator=_check_port)
    swissnum: str = attrs.field(validator=_check_swissnum)
    tor: bool = False

    def __repr__(self) -> str:
        return f"<Nurl {self.spki_hash[:8]}… at {self.host}:{self.port}>"

    @property
    def scheme(self) -> str:
        return TOR_SCHEME if self.tor else SCHEME

    def to_text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{self.spki_hash}@{host}:{self.port}/{self.swissnum}#{VERSION_FRAGMENT}"

    @classmethod
    def parse(cls, text: str) -> "Nurl":
        """The NURL ``text`` is; NurlError unless it is an HTTP (``#v=1``) storage NURL."""
        if not isinstance(text, str) or len(text) > MAX_NURL_LENGTH:
            raise NurlError("a NURL is text of at most 1000 characters")
        match = _NURL.fullmatch(text)
        if match is None:
            raise NurlError(f"not an HTTP storage NURL: {_redact(text)!r}")
        host = match.group("host")
        if host.startswith("["):
            host = host[1:-1]
        try:
            return cls(match.group("hash"), host, int(match.group("port")), match.group("swissnum"),
                       tor=match.group("scheme") == TOR_SCHEME)
        except ValueError as failure:
            raise NurlError(f"bad NURL {_redact(text)!r}: {failure}") from None


_NURL = re.compile(
    r"(?P<scheme>pb|pb\+tor)://(?P<hash>[^@/#]+)@(?P<host>\[[^\]/]+\]|[^:/@#\[\]]+)"
    r":(?P<port>[0-9]{1,5})/(?P<swissnum>[^/#?]+)#v=1"
)


def _redact(text: str) -> str:
    """A NURL for messages: the swissnum replaced, so logs never hold it."""
    return re.sub(r"(@[^/]*/)[^#]*", r"\1…", text)[:120]


def spki_hash(certificate: bytes | x509.Certificate) -> str:
    """Tahoe's SPKI hash of a certificate (PEM or DER bytes, or a loaded certificate)."""
    if isinstance(certificate, bytes):
        if certificate.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(certificate)
        else:
            certificate = x509.load_der_x509_certificate(certificate)
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=").decode("ascii")


def nurls_for_location(location_hints: Iterable[str], spki_hash_text: str, swissnum: str) -> list[Nurl]:
    """The NURLs Tahoe 1.20 announces for a Tub with these location hints (each may hold several, comma-separated)."""
    found = []
    for hints in location_hints:
        for hint in hints.split(","):
            parts = hint.strip().split(":")
            if len(parts) != 3 or parts[0] not in ("tcp", "tor") or not parts[2].isdigit():
                continue
            scheme, host, port = parts
            if scheme == "tor" and not host.endswith(".onion"):
                continue
            try:
                nurl = Nurl(spki_hash_text, host, int(port), swissnum, tor=scheme == "tor")
            except ValueError:
                continue
            if nurl not in found:
                found.append(nurl)
    return found
