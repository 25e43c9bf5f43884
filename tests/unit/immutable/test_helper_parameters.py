"""What an upload helper accepts from a client's RIEncryptedUploadable: any answer gives a
valid file shape or BadUploadable naming the number, never another error."""

from hypothesis import given
from hypothesis import strategies as st

from shoal.immutable.helper import MAX_SEGMENT_SIZE, BadUploadable, check_parameters

numbers = st.one_of(st.integers(-5, 300), st.integers(), st.booleans(), st.none(), st.text(max_size=3),
                    st.floats(allow_nan=False))


@given(st.one_of(st.tuples(numbers, numbers, numbers, numbers), st.lists(numbers, max_size=6), numbers),
       st.integers(1, 2**40))
def test_any_answer_is_a_shape_or_bad_uploadable(answer, size):
    try:
        shape, happy = check_parameters(answer, size)
    except BadUploadable as e:
        assert str(e)
        return
    k, h, n, segment_size = answer
    assert (shape.k, happy, shape.n, shape.segment_size, shape.size) == (k, h, n, segment_size, size)
    assert 1 <= shape.k <= shape.n <= 256 and 1 <= happy <= shape.n
    assert shape.segment_size % shape.k == 0 and shape.segment_size <= MAX_SEGMENT_SIZE


@given(st.integers(1, 256).flatmap(lambda k: st.tuples(
    st.just(k), st.integers(k, 256).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
    st.integers(1, MAX_SEGMENT_SIZE // k))))
def test_tahoe_clients_parameters_are_accepted(drawn):
    k, (happy, n), blocks = drawn
    shape, got_happy = check_parameters((k, happy, n, k * blocks), 10**6)
    assert (shape.k, got_happy, shape.n, shape.segment_size) == (k, happy, n, k * blocks)
