"""Argument checks: every malformed input is refused with a message naming the storage index."""

import pytest

from shoal.storage import validate
from shoal.storage.errors import BadRequestError, UnsupportedTestOperatorError

SI = b"\x00" * 16


@pytest.mark.parametrize("value", [b"", b"x" * 15, b"x" * 17, "x" * 16, None, 16, bytearray(16)])
def test_storage_index_must_be_16_bytes(value):
    with pytest.raises(BadRequestError, match="storage index"):
        validate.check_storage_index(value)


@pytest.mark.parametrize("value", [b"", b"x" * 31, b"x" * 33, "x" * 32, None])
def test_secrets_must_be_32_bytes(value):
    with pytest.raises(BadRequestError, match="aaaaaaaaaaaaaaaaaaaaaaaaaa: renew secret"):
        validate.check_secret(SI, "renew secret", value)


@pytest.mark.parametrize("value", [-1, 256, 1.0, "1", True, None])
def test_share_numbers_are_ints_0_to_255(value):
    with pytest.raises(BadRequestError, match="share number"):
        validate.check_shnum(SI, value)


def test_sharenums():
    assert validate.check_sharenums(SI, {3, 1, 2}) == [1, 2, 3]
    assert validate.check_sharenums(SI, frozenset()) == []
    with pytest.raises(BadRequestError, match="more than 256"):
        validate.check_sharenums(SI, set(range(257)))
    with pytest.raises(BadRequestError, match="must be a set"):
        validate.check_sharenums(SI, 5)


@pytest.mark.parametrize("value", [-1, 2**64, 1.5, "0", False])
def test_offsets_fit_64_unsigned_bits(value):
    with pytest.raises(BadRequestError, match="offset"):
        validate.check_offset(SI, "write offset", value)


def test_read_vectors():
    assert validate.check_read_vector(SI, [(0, 1), [5, 0]]) == [(0, 1), (5, 0)]
    for bad in ([(0,)], [(0, 1, 2)], [(0, 2**31)], [(-1, 1)], "not a list", [None]):
        with pytest.raises(BadRequestError):
            validate.check_read_vector(SI, bad)


def test_test_and_write_vectors():
    checked = validate.check_test_and_write_vectors(
        SI, {0: ([(0, 1, b"eq", b"a")], [(0, b"b")], None), 1: [[], [], 5]}
    )
    assert checked == {0: ([(0, 1, b"eq", b"a")], [(0, b"b")], None), 1: ([], [], 5)}
    bad_inputs = [
        [],
        {0: ([], [])},
        {0: ([], [], -1)},
        {0: ([(0, 1, b"eq")], [], None)},
        {0: ([(0, 1, b"eq", "text")], [], None)},
        {0: ([], [(0, "text")], None)},
        {0: ([], [(0, b"x", 1)], None)},
        {0: ("abc", [], None)},
        {256: ([], [], None)},
        {n: ([], [], None) for n in range(257)},
    ]
    for bad in bad_inputs:
        with pytest.raises(BadRequestError):
            validate.check_test_and_write_vectors(SI, bad)


@pytest.mark.parametrize("operator", [b"lt", b"le", b"ne", b"ge", b"gt", b"", b"EQ"])
def test_only_eq_is_a_test_operator(operator):
    with pytest.raises(UnsupportedTestOperatorError, match="only b'eq'"):
        validate.check_test_and_write_vectors(SI, {0: ([(0, 1, operator, b"a")], [], None)})


def test_describe_si_of_garbage_is_safe():
    assert validate.describe_si(b"short") == "b'short'"
