"""Ed25519 node keys in Tahoe-LAFS 1.20's text forms.

Private key: b"priv-v0-" + base32(32-byte seed) (the file private/node.privkey);
public key: b"pub-v0-" + base32(32 raw bytes); a server id is b"v0-" + base32(public).
Signatures (64 bytes) sign introducer announcements.
"""

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from shoal.encoding.base32 import a2b, b2a_bytes
from shoal.errors import EncodingError, Fault, ShoalError

PRIVATE_PREFIX = b"priv-v0-"
PUBLIC_PREFIX = b"pub-v0-"
SERVER_ID_PREFIX = b"v0-"


class BadKeyError(ShoalError):
    """A key string or signature that does not parse or verify (whoever supplied
    it: callers that read others' data re-raise as their own kind)."""

    fault = Fault.CALLER


class SigningKey:
    def __init__(self, key: ECC.EccKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(ECC.generate(curve="Ed25519"))

    @classmethod
    def from_seed(cls, seed: bytes) -> "SigningKey":
        if len(seed) != 32:
            raise BadKeyError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(ECC.construct(curve="Ed25519", seed=seed))

    @classmethod
    def from_string(cls, text: bytes) -> "SigningKey":
        text = text.strip()
        if not text.startswith(PRIVATE_PREFIX):
            raise BadKeyError("an Ed25519 private key string starts with 'priv-v0-'")
        try:
            return cls.from_seed(a2b(text[len(PRIVATE_PREFIX) :]))
        except EncodingError as e:
            raise BadKeyError(f"bad private key string: {e}") from None

    def to_string(self) -> bytes:
        return PRIVATE_PREFIX + b2a_bytes(self._key.seed)

    def verifying_key(self) -> "VerifyingKey":
        return VerifyingKey(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        return eddsa.new(self._key, "rfc8032").sign(message)


class VerifyingKey:
    def __init__(self, key: ECC.EccKey) -> None:
        self._key = key

    @classmethod
    def from_raw(cls, raw: bytes) -> "VerifyingKey":
        if len(raw) != 32:
            raise BadKeyError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
        try:
            return cls(eddsa.import_public_key(raw))
        except ValueError as e:
            raise BadKeyError(f"not an Ed25519 public key: {e}") from None

    @classmethod
    def from_string(cls, text: bytes) -> "VerifyingKey":
        text = text.strip()
        if not text.startswith(PUBLIC_PREFIX):
            raise BadKeyError("an Ed25519 public key string starts with 'pub-v0-'")
        try:
            return cls.from_raw(a2b(text[len(PUBLIC_PREFIX) :]))
        except EncodingError as e:
            raise BadKeyError(f"bad public key string: {e}") from None

    def raw(self) -> bytes:
        return self._key.export_key(format="raw")

    def to_string(self) -> bytes:
        return PUBLIC_PREFIX + b2a_bytes(self.raw())

    def server_id(self) -> bytes:
        """b"v0-" + base32(public key): how Tahoe names a server."""
        return SERVER_ID_PREFIX + b2a_bytes(self.raw())

    def verify(self, signature: bytes, message: bytes) -> None:
        try:
            eddsa.new(self._key, "rfc8032").verify(message, signature)
        except ValueError:
            raise BadKeyError("Ed25519 signature does not verify") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyingKey) and self.raw() == other.raw()

    def __hash__(self) -> int:
        return hash(self.raw())
