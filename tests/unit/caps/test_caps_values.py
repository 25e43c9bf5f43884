"""Cap values: text round trips, derived caps and keys, flags, validation."""

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.caps import (
    BadCapError,
    CHKCap,
    CHKDirectoryCap,
    CHKDirectoryVerifierCap,
    CHKVerifierCap,
    DirectoryReadCap,
    DirectoryVerifierCap,
    DirectoryWriteCap,
    LiteralCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryVerifierCap,
    MDMFDirectoryWriteCap,
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
    UnknownCap,
    format_cap,
    parse_cap,
    wrap_directory,
)
from shoal.crypto.hashes import ssk_readkey_hash, ssk_storage_index_hash, storage_index_hash
from shoal.encoding.base32 import b2a
from tests.strategies import (
    caps,
    chk_caps,
    directory_caps,
    file_caps,
    known_caps,
    mdmf_write_caps,
    ssk_write_caps,
    unknown_caps,
)

K16, H32 = bytes(range(16)), bytes(range(32))

# class: (is_mutable, is_readonly, is_directory), as Tahoe's uri.py answers.
FLAGS = {
    LiteralCap: (False, True, False),
    CHKCap: (False, True, False),
    CHKVerifierCap: (False, True, False),
    SSKWriteCap: (True, False, False),
    SSKReadCap: (True, True, False),
    SSKVerifierCap: (False, True, False),
    MDMFWriteCap: (True, False, False),
    MDMFReadCap: (True, True, False),
    MDMFVerifierCap: (False, True, False),
    DirectoryWriteCap: (True, False, True),
    DirectoryReadCap: (True, True, True),
    DirectoryVerifierCap: (False, True, True),
    MDMFDirectoryWriteCap: (True, False, True),
    MDMFDirectoryReadCap: (True, True, True),
    MDMFDirectoryVerifierCap: (False, True, True),
    CHKDirectoryCap: (False, True, True),
    CHKDirectoryVerifierCap: (False, True, True),
    LiteralDirectoryCap: (False, True, True),
}


@given(caps)
def test_every_cap_round_trips(cap):
    text = format_cap(cap)
    assert isinstance(text, str)
    assert parse_cap(text) == cap
    assert parse_cap(cap.to_bytes()) == cap
    assert cap.to_bytes() == text.encode("utf-8")
    assert hash(parse_cap(text)) == hash(cap)


@given(known_caps)
def test_known_caps_are_ascii_with_their_prefix(cap):
    text = cap.to_string()
    assert text.isascii()
    assert text.startswith(type(cap).PREFIX)
    assert type(cap).from_string(text) == cap


@given(known_caps)
def test_flags(cap):
    assert (cap.is_mutable, cap.is_readonly, cap.is_directory) == FLAGS[type(cap)]


@given(known_caps)
def test_readonly_and_verifier_are_consistent(cap):
    ro = cap.readonly()
    assert ro.is_readonly
    assert ro.readonly() == ro
    assert ro.storage_index == cap.storage_index
    assert ro.is_directory == cap.is_directory
    if cap.is_readonly:
        assert ro == cap
    verifier = cap.verifier()
    if isinstance(cap, LiteralCap | LiteralDirectoryCap):
        assert verifier is None
        assert cap.storage_index is None
        return
    assert verifier.verifier() == verifier
    assert verifier.readonly() == verifier
    assert not verifier.is_mutable
    assert verifier.storage_index == cap.storage_index
    assert len(cap.storage_index) == 16
    assert ro.verifier() == verifier


@given(file_caps)
def test_directories_wrap_file_caps(file_cap):
    directory = wrap_directory(file_cap)
    assert directory.file_cap == file_cap
    assert directory.is_directory
    assert directory != file_cap
    assert directory.storage_index == file_cap.storage_index
    # Same fields, different prefix.
    assert directory.to_string().split(":", 2)[2] == file_cap.to_string().split(":", 2)[2]
    assert directory.readonly().file_cap == file_cap.readonly()
    if file_cap.verifier() is not None:
        assert directory.verifier().file_cap == file_cap.verifier()


@given(directory_caps)
def test_directory_caps_are_not_wrappable(directory):
    with pytest.raises(TypeError):
        wrap_directory(directory)


@given(chk_caps())
def test_chk_derivations(cap):
    assert cap.storage_index == storage_index_hash(cap.key)
    v = cap.verifier()
    assert (v.ueb_hash, v.needed, v.total, v.size) == (cap.ueb_hash, cap.needed, cap.total, cap.size)
    assert cap.to_string() == (
        f"URI:CHK:{b2a(cap.key)}:{b2a(cap.ueb_hash)}:{cap.needed}:{cap.total}:{cap.size}"
    )


@given(st.one_of(ssk_write_caps, mdmf_write_caps))
def test_mutable_key_chain(write):
    readkey = ssk_readkey_hash(write.writekey)
    assert write.readkey == readkey
    assert write.readonly().readkey == readkey
    assert write.storage_index == ssk_storage_index_hash(readkey)
    assert write.verifier().storage_index == write.storage_index
    assert write.readonly().fingerprint == write.verifier().fingerprint == write.fingerprint
    family = type(write).PREFIX[:-1]  # URI:SSK or URI:MDMF
    assert write.readonly().to_string().startswith(family + "-RO:")
    assert write.verifier().to_string().startswith(family + "-Verifier:")


def test_families_with_equal_fields_differ():
    assert SSKWriteCap(K16, H32) != MDMFWriteCap(K16, H32)
    assert SSKReadCap(K16, H32) != SSKVerifierCap(K16, H32)
    assert parse_cap(SSKWriteCap(K16, H32).to_string()) != MDMFWriteCap(K16, H32)
    assert DirectoryWriteCap(SSKWriteCap(K16, H32)) != SSKWriteCap(K16, H32)


def test_caps_are_frozen():
    cap = SSKWriteCap(K16, H32)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cap.writekey = K16  # type: ignore[misc]


def test_repr_shows_no_key():
    for cap in (SSKWriteCap(K16, H32), CHKCap(K16, H32, 3, 10, 5), DirectoryWriteCap(SSKWriteCap(K16, H32))):
        assert b2a(K16) not in repr(cap)
        assert b2a(K16)[:6] not in repr(cap)
        assert repr(cap).startswith(f"<{type(cap).__name__} si=")
    assert repr(LiteralCap(b"abc")) == "<LiteralCap 3 bytes>"


def test_literal():
    assert LiteralCap(b"").to_string() == "URI:LIT:"
    assert LiteralCap(b"a").to_string() == "URI:LIT:me"
    assert LiteralCap(b"abc").size == 3
    assert LiteralDirectoryCap(LiteralCap(b"")).to_string() == "URI:DIR2-LIT:"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CHKCap(K16[:15], H32, 3, 10, 0), "key"),
        (lambda: CHKCap(K16, H32 + b"x", 3, 10, 0), "ueb_hash"),
        (lambda: CHKCap(K16, H32, 0, 10, 0), "needed"),
        (lambda: CHKCap(K16, H32, 11, 10, 0), "needed"),
        (lambda: CHKCap(K16, H32, 3, 257, 0), "total"),
        (lambda: CHKCap(K16, H32, 3, 10, -1), "size"),
        (lambda: CHKCap(K16, H32, 3, 10, 2**64), "size"),
        (lambda: CHKVerifierCap(b"", H32, 1, 1, 0), "storage_index"),
        (lambda: SSKWriteCap(K16 * 2, H32), "writekey"),
        (lambda: SSKReadCap(K16, H32[:16]), "fingerprint"),
        (lambda: MDMFVerifierCap(K16[:1], H32), "storage_index"),
    ],
)
def test_constructor_validates_values(build, field):
    with pytest.raises(BadCapError) as info:
        build()
    assert info.value.field == field


@pytest.mark.parametrize(
    "build",
    [
        lambda: CHKCap("a" * 16, H32, 3, 10, 0),
        lambda: CHKCap(bytearray(K16), H32, 3, 10, 0),
        lambda: CHKCap(K16, H32, True, 10, 0),
        lambda: CHKCap(K16, H32, 3, 10, 1.0),
        lambda: LiteralCap("text"),
        lambda: SSKWriteCap(K16, None),
        lambda: DirectoryWriteCap(SSKReadCap(K16, H32)),
        lambda: MDMFDirectoryReadCap(SSKReadCap(K16, H32)),
        lambda: CHKDirectoryCap(CHKVerifierCap(K16, H32, 1, 1, 1)),
        lambda: UnknownCap(b"URI:NEW:"),
    ],
)
def test_constructor_rejects_wrong_types(build):
    with pytest.raises(TypeError):
        build()


@given(unknown_caps)
def test_unknown_caps(cap):
    assert cap.readonly() is None
    assert cap.verifier() is None
    assert cap.storage_index is None
    assert not hasattr(cap, "is_mutable")
    assert cap.alleged_readonly == cap.text.startswith(("ro.", "imm."))
    assert cap.alleged_immutable == cap.text.startswith("imm.")


@given(known_caps)
def test_unknown_cap_refuses_known_text(cap):
    with pytest.raises(BadCapError):
        UnknownCap(cap.to_string())
    with pytest.raises(BadCapError):
        UnknownCap("ro." + cap.to_string())
