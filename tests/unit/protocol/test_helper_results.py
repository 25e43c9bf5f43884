"""Upload results from a helper (Tahoe's HelperUploadResults copyable): any received state
becomes checked HelperResults or ValueError; ours survive the round trip."""

from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.helper import HelperResults, UploadResultsCopy

values = st.recursive(st.one_of(st.none(), st.integers(), st.binary(max_size=40), st.text(max_size=5),
                                st.floats(allow_nan=False)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3), st.frozensets(st.integers(0, 9)),
                                              st.dictionaries(st.integers(0, 9) | st.text(max_size=3), inner,
                                                              max_size=3)),
                      max_leaves=10)
keys = st.sampled_from(["uri_extension_hash", "uri_extension_data", "sharemap", "servermap", "timings",
                        "preexisting_shares", "pushed_shares", "file_size", "ciphertext_fetched"])


@given(st.dictionaries(keys, values, max_size=9), st.booleans())
def test_any_state_is_results_or_value_error(state, good_hash):
    if good_hash:
        state["uri_extension_hash"] = b"h" * 32
    c = UploadResultsCopy()
    c.setCopyableState(state)
    try:
        r = c.to_results()
    except ValueError:
        return
    assert len(r.uri_extension_hash) == 32 and isinstance(r.uri_extension_data, dict)
    assert all(isinstance(sh, int) and all(isinstance(s, bytes) for s in ids) for sh, ids in r.sharemap.items())
    assert r.preexisting_shares >= 0 and r.pushed_shares >= 0
    assert all(isinstance(v, float) for v in r.timings.values())


def test_huge_timings_are_dropped():
    c = UploadResultsCopy()
    c.setCopyableState({"uri_extension_hash": b"h" * 32, "uri_extension_data": {}, "timings": {"a": 10**400, "b": 2}})
    assert c.to_results().timings == {"b": 2.0}


@given(st.dictionaries(st.integers(0, 255), st.frozensets(st.binary(min_size=1, max_size=60), max_size=3),
                       max_size=10),
       st.integers(0, 10), st.integers(0, 10))
def test_our_results_round_trip(sharemap, pre, pushed):
    r = HelperResults(uri_extension_hash=b"u" * 32, uri_extension_data={"size": 100, "needed_shares": 3},
                      sharemap=sharemap, preexisting_shares=pre, pushed_shares=pushed)
    back = UploadResultsCopy()
    back.setCopyableState(UploadResultsCopy.from_results(r).getStateToCopy())
    assert back.to_results() == r
