"""The permuted server ring of Tahoe-LAFS 1.20.

For each storage index a client orders the storage servers by
SHA-1(storage_index + permutation_seed) (hashutil.permute_server_hash), and
uploads and downloads walk servers in that order, so every client that knows
the same servers agrees on where a file's shares live.

A server's seed comes from its announcement's "permutation-seed-base32"
(decoded from base32), else from a b"v0-<52 base32>" server id (the 32 raw
key bytes), else SHA-256 of the server id. Note the quirk of new Tahoe
servers: they announce base32 of the 52-character base32 *text* of their key,
so the announced seed (the one everybody uses) is that ASCII text, not the raw
key bytes the server-id fallback would give.

Tahoe sorts a set of servers, so servers with the same hash (only possible
with the same seed) come out in no fixed order; shoal breaks such ties by
server id. Preferred servers (if any are given) go first, each group in
permuted order, as Tahoe's `[client] peers.preferred` intends.
"""

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from shoal.encoding.base32 import a2b
from shoal.errors import EncodingError, Fault, ShoalError

PERMUTATION_SEED = "permutation-seed-base32"
_PUBKEY_SERVER_ID = re.compile(rb"\Av0-[a-z2-7]{52}\Z")


class BadSeedError(ShoalError):
    """An announced permutation seed that is not base32 (the announcer's fault)."""

    fault = Fault.SERVER


def permute_hash(storage_index: bytes, seed: bytes) -> bytes:
    return hashlib.sha1(storage_index + seed).digest()


def seed_for(announcement: Mapping[str, Any], server_id: bytes) -> bytes:
    """The permutation seed of a server, with Tahoe's fallbacks."""
    if PERMUTATION_SEED in announcement:
        seed = announcement[PERMUTATION_SEED]
        if isinstance(seed, str):
            seed = seed.encode("utf-8")
        if not isinstance(seed, bytes):
            raise BadSeedError(f"server {server_id!r}: {PERMUTATION_SEED} is not text")
        try:
            return a2b(seed)
        except EncodingError as e:
            raise BadSeedError(f"server {server_id!r}: bad {PERMUTATION_SEED}: {e}") from None
    if _PUBKEY_SERVER_ID.match(server_id):
        return a2b(server_id[3:])
    return hashlib.sha256(server_id).digest()


def permuted_servers(
    storage_index: bytes,
    servers: Iterable[tuple[bytes, bytes]],
    preferred: Collection[bytes] = (),
) -> list[bytes]:
    """Server ids of (server_id, permutation_seed) pairs, in the ring order for storage_index."""

    def key(item: tuple[bytes, bytes]) -> tuple[bool, bytes, bytes]:
        server_id, seed = item
        return (server_id not in preferred, permute_hash(storage_index, seed), server_id)

    return [server_id for server_id, _ in sorted(servers, key=key)]
