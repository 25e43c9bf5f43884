"""Shared hypothesis strategies for shoal's tests (append yours; keep them small and fast)."""

import attrs
from hypothesis import strategies as st

from shoal.caps import (
    CHKCap,
    CHKVerifierCap,
    LiteralCap,
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
    UnknownCap,
    parse_cap,
    wrap_directory,
)
from shoal.caps.base import BadCapError
from shoal.formats.lease import LeaseInfo
from shoal.formats.ueb import INT_KEYS, UEB, UEB_KEYS

# --- formats: leases, containers, UEBs --------------------------------------

uint32s = st.integers(min_value=0, max_value=2**32 - 1)
secrets32 = st.binary(min_size=32, max_size=32)
hashes32 = st.binary(min_size=32, max_size=32)
nodeids = st.binary(min_size=20, max_size=20)


@st.composite
def lease_infos(draw, with_nodeid=True, hashed=False, min_owner=0):
    """A shoal.formats.lease.LeaseInfo with arbitrary secrets."""
    return LeaseInfo(
        owner_num=draw(st.integers(min_value=min_owner, max_value=2**32 - 1)),
        renew_secret=draw(secrets32),
        cancel_secret=draw(secrets32),
        expiration_time=draw(uint32s),
        nodeid=draw(nodeids) if with_nodeid else None,
        hashed=hashed,
    )


ueb_keys = st.from_regex(r"[a-zA-Z_-]{1,20}", fullmatch=True)


@st.composite
def ueb_field_maps(draw):
    """A map pack_ueb accepts: the five int keys hold ints, all others bytes."""
    fields = {}
    for key in draw(st.lists(ueb_keys, max_size=8, unique=True)):
        if key in INT_KEYS:
            fields[key] = draw(st.integers(min_value=0, max_value=2**64))
        else:
            fields[key] = draw(st.binary(max_size=40))
    for key in draw(st.lists(st.sampled_from(sorted(INT_KEYS)), max_size=5, unique=True)):
        fields[key] = draw(st.integers(min_value=0, max_value=2**64))
    return fields


@st.composite
def uebs(draw, with_extra=True):
    """A valid shoal.formats.ueb.UEB, possibly with unknown extra keys."""
    k = draw(st.integers(min_value=1, max_value=256))
    n = draw(st.integers(min_value=k, max_value=256))
    size = draw(st.integers(min_value=1, max_value=2**50))
    segment_size = draw(st.integers(min_value=1, max_value=2**21))
    ueb = UEB.build(
        size=size,
        segment_size=segment_size,
        needed_shares=k,
        total_shares=n,
        crypttext_hash=draw(hashes32),
        crypttext_root_hash=draw(hashes32),
        share_root_hash=draw(hashes32),
    )
    if with_extra:
        keys = draw(st.lists(ueb_keys.filter(lambda key: key not in UEB_KEYS), max_size=3, unique=True))
        extra = tuple(sorted((key, draw(st.binary(max_size=40))) for key in keys))
        ueb = attrs.evolve(ueb, extra=extra)
    return ueb


# --- caps -------------------------------------------------------------------

keys16 = st.binary(min_size=16, max_size=16)
cap_hashes = st.binary(min_size=32, max_size=32)
file_sizes = st.one_of(
    st.integers(min_value=0, max_value=2**20), st.integers(min_value=0, max_value=2**64 - 1)
)


@st.composite
def share_counts(draw):
    """(needed, total) with 1 <= needed <= total <= 256."""
    total = draw(st.integers(min_value=1, max_value=256))
    return draw(st.integers(min_value=1, max_value=total)), total


@st.composite
def chk_caps(draw):
    k, n = draw(share_counts())
    return CHKCap(draw(keys16), draw(cap_hashes), k, n, draw(file_sizes))


@st.composite
def chk_verifier_caps(draw):
    k, n = draw(share_counts())
    return CHKVerifierCap(draw(keys16), draw(cap_hashes), k, n, draw(file_sizes))


literal_caps = st.builds(LiteralCap, st.binary(max_size=80))
ssk_write_caps = st.builds(SSKWriteCap, keys16, cap_hashes)
ssk_read_caps = st.builds(SSKReadCap, keys16, cap_hashes)
ssk_verifier_caps = st.builds(SSKVerifierCap, keys16, cap_hashes)
mdmf_write_caps = st.builds(MDMFWriteCap, keys16, cap_hashes)
mdmf_read_caps = st.builds(MDMFReadCap, keys16, cap_hashes)
mdmf_verifier_caps = st.builds(MDMFVerifierCap, keys16, cap_hashes)

file_caps = st.one_of(
    literal_caps, chk_caps(), chk_verifier_caps(),
    ssk_write_caps, ssk_read_caps, ssk_verifier_caps,
    mdmf_write_caps, mdmf_read_caps, mdmf_verifier_caps,
)
directory_caps = file_caps.map(wrap_directory)
known_caps = st.one_of(file_caps, directory_caps)


def _opaque(text: str) -> bool:
    try:
        return isinstance(parse_cap(text), UnknownCap)
    except BadCapError:
        return False


unknown_caps = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"(ro\.|imm\.)?URI:[A-Z0-9-]{0,12}:[a-z2-7:]{0,60}", fullmatch=True),
).filter(_opaque).map(UnknownCap)
caps = st.one_of(known_caps, unknown_caps)


# --- hostile storage-protocol arguments (tests/unit/storage/test_storage_fuzz.py) ---------

STORAGE_INDEXES = [b"\x01" * 16, b"\x02" * 16, b"\xff" * 16]  # few, so calls meet each other's shares
GOOD_SECRETS = [b"r" * 32, b"c" * 32, b"w" * 32]
BOUNDARY_INTS = [-(2**64), -1, 0, 1, 255, 256, 2**31 - 1, 2**31, 2**32, 2**63, 2**64 - 1, 2**64, 2**200]
WRONG_TYPES = st.sampled_from([None, "text", 1.5, b"", [], {}, (), True, object()])



def mostly(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` four times in five, else `hostile`: calls get past one check to the next."""
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda ok: valid if ok else hostile)


hostile_ints = st.one_of(st.sampled_from(BOUNDARY_INTS), st.integers(-10, 2000), WRONG_TYPES)
sizes = st.one_of(st.integers(0, 2000), st.sampled_from([0, 2**31, 2**63, 2**64 - 1]))
hostile_sizes = mostly(sizes, hostile_ints)
hostile_sis = mostly(st.sampled_from(STORAGE_INDEXES), st.one_of(st.binary(max_size=40), WRONG_TYPES))
hostile_secrets = mostly(st.sampled_from(GOOD_SECRETS), st.one_of(st.just(b""), st.binary(max_size=64), WRONG_TYPES))
hostile_shnums = mostly(st.integers(0, 12), st.one_of(st.integers(-3, 260), st.sampled_from(BOUNDARY_INTS),
                                                     WRONG_TYPES))
hostile_share_sets = mostly(
    st.sets(st.integers(0, 9), max_size=10),
    st.one_of(
        st.lists(hostile_shnums, max_size=20),  # duplicates, negatives, wrong types
        st.just(set(range(300))),  # more shares than any file has
        st.just(list(range(100_000))),  # a giant vector
        WRONG_TYPES,
    ),
)
hostile_data = mostly(st.binary(max_size=2000), WRONG_TYPES)
hostile_read_vectors = mostly(
    st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000)), max_size=5),
    st.one_of(
        st.lists(st.tuples(hostile_ints, hostile_ints), max_size=20),
        st.just([(0, 10)] * 100_000),  # a giant read vector
        st.lists(st.one_of(WRONG_TYPES, st.tuples(hostile_ints)), max_size=5),
        WRONG_TYPES,
    ),
)
hostile_write_vectors = mostly(
    st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=500)), max_size=4),
    st.one_of(
        st.lists(st.tuples(hostile_ints, hostile_data), max_size=5),
        st.just([(2**62, b"x")]),  # far past the end
        st.just([(i * 7, b"y") for i in range(20_000)]),  # many small writes
        WRONG_TYPES,
    ),
)
hostile_test_vectors = mostly(
    st.just([]),
    st.one_of(
        st.lists(st.tuples(hostile_ints, hostile_ints, st.sampled_from([b"eq", b"ne", b"lt", "eq", None]),
                           hostile_data), max_size=4),
        WRONG_TYPES,
    ),
)
hostile_tw_vectors = mostly(
    st.dictionaries(hostile_shnums.filter(lambda v: isinstance(v, int)),
                    st.tuples(hostile_test_vectors, hostile_write_vectors,
                              mostly(st.none(), st.one_of(st.integers(0, 5000), hostile_ints))),
                    max_size=6),
    st.one_of(
        st.dictionaries(st.integers(0, 300), st.just(([], [(0, b"z")], None)), min_size=257, max_size=260),
        WRONG_TYPES,
    ),
)
