"""A whole-share reader for tests: every check a downloader makes, then decode.

Used by the pure-core tests and by the Tahoe conformance tests (shares that
Tahoe's own code wrote)."""

from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import MutableShare, unpack_share
from shoal.mutable.decoder import (
    ShareCheckError,
    check_block,
    check_block_tree_root,
    check_signature,
    check_verification_key,
    decode_segment,
    decrypt_private_key,
)


def check_share(data: bytes, shnum: int, fingerprint: bytes, writekey: bytes | None = None) -> MutableShare:
    """Parse and check one whole share (ShareCheckError or FormatError if bad)."""
    share = unpack_share(data)
    key = check_verification_key(share.verification_key, fingerprint)
    check_signature(key, share.prefix, share.signature)
    check_block_tree_root(share.prefix, shnum, share.share_hash_chain, share.block_hash_tree)
    for segnum, (salt, block) in enumerate(share.blocks):
        check_block(share.prefix, share.block_hash_tree, segnum, salt, block)
    if writekey is not None:
        decrypt_private_key(writekey, share.enc_privkey)
    return share


def read_shares(
    shares: dict[int, bytes], fingerprint: bytes, readkey: bytes, *,
    writekey: bytes | None = None, strict: bool = False, last: bool = False,
) -> bytes:
    """The plaintext from the good shares (strict: every share must be good; last:
    decode from the k highest-numbered, so zfec really decodes)."""
    good = {}
    for sh, data in shares.items():
        try:
            good[sh] = check_share(data, sh, fingerprint, writekey)
        except (ShareCheckError, FormatError):
            if strict:
                raise
    assert len({s.prefix for s in good.values()}) <= 1
    if not good:
        raise ShareCheckError("no good shares")
    k = next(iter(good.values())).prefix.k
    if len(good) < k:
        raise ShareCheckError(f"only {len(good)} good shares")
    ordered = sorted(good.items())
    chosen = dict(ordered[-k:] if last else ordered[:k])
    prefix = next(iter(chosen.values())).prefix
    out = []
    for segnum in range(prefix.num_segments):
        salt = next(iter(chosen.values())).blocks[segnum][0]
        blocks = {sh: s.blocks[segnum][1] for sh, s in chosen.items()}
        out.append(decode_segment(prefix, readkey, segnum, salt, blocks))
    return b"".join(out)
