"""The unhappy-upload sentences, word for word as Tahoe 1.20 prints them (scripts match them)."""

from hypothesis import given
from hypothesis import strategies as st

from shoal.placement.unhappy import failure_message

# seen from a real Tahoe 1.20 client (2-of-4, shares.happy=3, two storage servers)
TAHOE_2_OF_3 = ("shares could be placed on only 2 server(s) such that any 2 of them have enough shares "
                "to recover the file, but we were asked to place shares on at least 3 such servers.")


def test_enough_servers_too_little_happiness():
    assert failure_message(2, 2, 3, 2) == TAHOE_2_OF_3


def test_fewer_servers_than_k():
    assert failure_message(1, 3, 7, 1) == (
        "shares could be placed or found on only 1 server(s). We were asked to place shares on at "
        "least 7 server(s) such that any 3 of them have enough shares to recover the file.")


def test_not_spread_out():
    assert failure_message(4, 3, 7, 2) == (
        "shares could be placed or found on 4 server(s), but they are not spread out evenly enough "
        "to ensure that any 3 of these servers would have enough shares to recover the file. We were "
        "asked to place shares on at least 7 servers such that any 3 of them have enough shares to "
        "recover the file.")


@given(st.integers(0, 300), st.integers(1, 256), st.integers(1, 256), st.integers(0, 256))
def test_one_sentence_naming_the_numbers(peers, k, happy, effective):
    text = failure_message(peers, k, happy, effective)
    assert text.startswith("shares could be placed") and text.endswith(".") and "\n" not in text
    assert f"at least {happy}" in text and f"any {k} of" in text
