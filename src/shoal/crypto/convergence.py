"""The convergent encryption key of Tahoe-LAFS 1.20.

key = first 16 bytes of SHA-256d(netstring(tag) || plaintext), where the tag
embeds the convergence secret and "k,n,segment size" (the effective segment
size). Computing it costs one full read of the plaintext before encryption.
"""

from collections.abc import Iterable

from shoal.crypto.hashes import convergence_hasher


def convergent_key(chunks: Iterable[bytes], secret: bytes, k: int, n: int, segment_size: int) -> bytes:
    hasher = convergence_hasher(k, n, segment_size, secret)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()
