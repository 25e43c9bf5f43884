"""AES-128-CTR as Tahoe-LAFS 1.20 uses it: the 128-bit counter block starts at zero.

Byte offset x of a stream is encrypted with counter block x // 16, so a
decryptor can start anywhere (range reads).
"""

from Crypto.Cipher import AES

KEY_SIZE = 16


class AESCTR:
    """Encrypts or decrypts (the same operation) a stream starting at byte `offset`."""

    def __init__(self, key: bytes, offset: int = 0) -> None:
        if len(key) not in (16, 32):
            raise ValueError(f"AES key must be 16 or 32 bytes, got {len(key)}")
        block, skip = divmod(offset, 16)
        self._cipher = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=block)
        if skip:
            self._cipher.encrypt(b"\x00" * skip)

    def process(self, data: bytes | memoryview) -> bytes:
        return self._cipher.encrypt(data)


def aes_ctr(key: bytes, data: bytes, offset: int = 0) -> bytes:
    """One-shot AES-CTR of data that starts at stream position offset."""
    return AESCTR(key, offset).process(data)
