"""Storage indexes and secrets for the suite: distinct, deterministic, readable."""

import hashlib


def storage_index(label: str) -> bytes:
    return hashlib.sha256(b"si:" + label.encode()).digest()[:16]


def secret(label: str) -> bytes:
    return hashlib.sha256(b"secret:" + label.encode()).digest()


def lease_secrets(label: str) -> tuple[bytes, bytes]:
    """(renew secret, cancel secret)."""
    return secret("renew:" + label), secret("cancel:" + label)


def slot_secrets(label: str) -> tuple[bytes, bytes, bytes]:
    """(write enabler, renew secret, cancel secret)."""
    return secret("we:" + label), secret("renew:" + label), secret("cancel:" + label)


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ from offset to offset."""
    return bytes((i * 7 + seed * 13 + i // 251) % 256 for i in range(size))
