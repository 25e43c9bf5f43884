"""Argument checks at the edge of the storage server, before any logic or disk access.

The limits follow Tahoe-LAFS 1.20's Foolscap constraints (interfaces.py):
storage indexes of 16 bytes, secrets of 32, at most 256 share numbers per
call, offsets that fit in 64 unsigned bits, read lengths in 31 bits. Share
numbers are 0-255 (zfec makes at most 256 shares). A failed check raises
BadRequestError naming the storage index and the argument.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from shoal.storage.errors import BadRequestError, UnsupportedTestOperatorError
from shoal.storage.layout import STORAGE_INDEX_LENGTH, si_b2a

SECRET_LENGTH = 32
MAX_SHARES_PER_CALL = 256
MAX_SHNUM = 255
MAX_OFFSET = 2**64 - 1
MAX_READ_LENGTH = 2**31 - 1
TEST_OPERATOR = b"eq"

TestVector = tuple[int, int, bytes, bytes]
WriteVector = tuple[int, bytes]
TestAndWrite = tuple[list[TestVector], list[WriteVector], int | None]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def describe_si(storage_index: bytes) -> str:
    """The base32 form for messages (or a repr if it is not a valid storage index)."""
    if isinstance(storage_index, bytes) and len(storage_index) == STORAGE_INDEX_LENGTH:
        return si_b2a(storage_index)
    return repr(storage_index)[:60]


def check_storage_index(storage_index: object) -> bytes:
    if not isinstance(storage_index, bytes):
        raise BadRequestError(f"storage index must be bytes, not {type(storage_index).__name__}")
    if len(storage_index) != STORAGE_INDEX_LENGTH:
        raise BadRequestError(
            f"storage index must be {STORAGE_INDEX_LENGTH} bytes, not {len(storage_index)}"
        )
    return storage_index


def check_secret(storage_index: bytes, name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != SECRET_LENGTH:
        got = len(value) if isinstance(value, bytes) else type(value).__name__
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {name} must be "
            f"{SECRET_LENGTH} bytes, got {got}"
        )
    return value


def check_shnum(storage_index: bytes, shnum: object) -> int:
    if not _is_int(shnum) or not 0 <= shnum <= MAX_SHNUM:  # type: ignore[operator]
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: share number {shnum!r} "
            f"is not an int in 0..{MAX_SHNUM}"
        )
    return shnum  # type: ignore[return-value]


def check_sharenums(storage_index: bytes, sharenums: object) -> list[int]:
    """A set (or other collection) of share numbers, as a sorted list."""
    if not isinstance(sharenums, (set, frozenset, list, tuple)):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: share numbers must be a set, "
            f"not {type(sharenums).__name__}"
        )
    if len(sharenums) > MAX_SHARES_PER_CALL:
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {len(sharenums)} share numbers "
            f"in one call, more than {MAX_SHARES_PER_CALL}"
        )
    return sorted({check_shnum(storage_index, shnum) for shnum in sharenums})


def check_offset(storage_index: bytes, what: str, value: object, limit: int = MAX_OFFSET) -> int:
    if not _is_int(value) or not 0 <= value <= limit:  # type: ignore[operator]
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {what} {value!r} "
            f"is not an int in 0..{limit}"
        )
    return value  # type: ignore[return-value]


def check_data(storage_index: bytes, what: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {what} must be bytes, "
            f"not {type(value).__name__}"
        )
    return value


def check_read_vector(storage_index: bytes, readv: object) -> list[tuple[int, int]]:
    """A list of (offset, length) pairs."""
    if not isinstance(readv, (list, tuple)):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: read vector must be a list, "
            f"not {type(readv).__name__}"
        )
    checked = []
    for item in readv:
        offset, length = _pair(storage_index, "read vector entry", item, 2)
        checked.append(
            (
                check_offset(storage_index, "read offset", offset),
                check_offset(storage_index, "read length", length, MAX_READ_LENGTH),
            )
        )
    return checked


def check_share_list(storage_index: bytes, shares: object) -> set[int]:
    if not isinstance(shares, (list, tuple, set, frozenset)):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: shares must be a list, "
            f"not {type(shares).__name__}"
        )
    return {check_shnum(storage_index, shnum) for shnum in shares}


def check_test_and_write_vectors(storage_index: bytes, vectors: object) -> dict[int, TestAndWrite]:
    """{shnum: (test vector, write vector, new_length)}, every element checked."""
    if not isinstance(vectors, Mapping):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: test-and-write vectors must be "
            f"a dict, not {type(vectors).__name__}"
        )
    if len(vectors) > MAX_SHARES_PER_CALL:
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {len(vectors)} shares in one "
            f"call, more than {MAX_SHARES_PER_CALL}"
        )
    checked: dict[int, TestAndWrite] = {}
    for shnum, value in vectors.items():
        shnum = check_shnum(storage_index, shnum)
        testv, writev, new_length = _pair(storage_index, f"share {shnum} vectors", value, 3)
        where = f"share {shnum}"
        tests = [_test_vector(storage_index, where, item) for item in _items(storage_index, where, testv)]
        writes = [_write_vector(storage_index, where, item) for item in _items(storage_index, where, writev)]
        if new_length is not None:
            new_length = check_offset(storage_index, f"{where} new_length", new_length)
        checked[shnum] = (tests, writes, new_length)
    return checked


def _items(storage_index: bytes, where: str, value: object) -> Iterable[Any]:
    if not isinstance(value, (list, tuple)):
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {where}: vector must be a list, "
            f"not {type(value).__name__}"
        )
    return value


def _pair(storage_index: bytes, what: str, value: object, size: int) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != size:
        raise BadRequestError(
            f"storage index {describe_si(storage_index)}: {what} must be a {size}-tuple, "
            f"got {value!r:.80}"
        )
    return tuple(value)


def _test_vector(storage_index: bytes, where: str, item: object) -> TestVector:
    offset, length, operator, specimen = _pair(storage_index, f"{where} test vector", item, 4)
    offset = check_offset(storage_index, f"{where} test offset", offset)
    length = check_offset(storage_index, f"{where} test length", length, MAX_READ_LENGTH)
    check_data(storage_index, f"{where} test operator", operator)
    if operator != TEST_OPERATOR:
        raise UnsupportedTestOperatorError(
            f"storage index {describe_si(storage_index)}: {where} test vector at offset "
            f"{offset} uses operator {operator!r}; only b'eq' is supported"
        )
    specimen = check_data(storage_index, f"{where} test specimen", specimen)
    return (offset, length, operator, specimen)


def _write_vector(storage_index: bytes, where: str, item: object) -> WriteVector:
    offset, data = _pair(storage_index, f"{where} write vector", item, 2)
    offset = check_offset(storage_index, f"{where} write offset", offset)
    data = check_data(storage_index, f"{where} write data at offset {offset}", data)
    return (offset, data)
