"""Tahoe-LAFS 1.20's own directory code in a subprocess (tahoe_dirnode_peer.py run by
.venv-peer's Python), and hypothesis strategies for directory children."""

import os
import pathlib
import subprocess
from typing import Any

import pytest
from hypothesis import strategies as st

from shoal.caps import CHKVerifierCap, UnknownCap
from shoal.dirnode import (
    BadChildCapError,
    MustBeImmutableError,
    MustBeReadonlyError,
    MustNotBeUnknownRWError,
)
from tests.interop.conftest import PEER, PeerClient, peer_available
from tests.strategies import caps

# Tahoe's error class for each of shoal's.
TAHOE_ERRORS = {
    MustBeImmutableError: "MustBeDeepImmutableError",
    MustBeReadonlyError: "MustBeReadonlyError",
    MustNotBeUnknownRWError: "MustNotBeUnknownRWError",
    BadChildCapError: "BadURIError",
}
SCRIPT = pathlib.Path(__file__).with_name("tahoe_dirnode_peer.py")


class TahoeDirnode(PeerClient):
    """The JSON-lines exchange of PeerClient, with tahoe_dirnode_peer.py at the far end."""

    def __init__(self) -> None:  # PeerClient's pipes, another script
        self.proc = subprocess.Popen(
            [str(PEER / "python"), str(SCRIPT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def ask(self, **request: Any) -> tuple[bool, Any]:
        """(True, result) or (False, Tahoe's exception class name)."""
        try:
            return True, self(**request)
        except RuntimeError as e:
            if str(e).startswith("peer client died"):
                raise
            return False, str(e)


def tahoe_dirnode_peer():
    """A module fixture: `_peer = pytest.fixture(scope="module", name="tahoe_dirnode")(tahoe_dirnode_peer)`."""
    if not peer_available():
        if os.environ.get("SHOAL_REQUIRE_PEER") == "1":
            pytest.fail("the reference peer .venv-peer is missing (make peer)")
        pytest.skip("reference peer .venv-peer not installed (make peer)")
    peer = TahoeDirnode()
    yield peer
    peer.close()


# --- strategies ---------------------------------------------------------------------

# Any Unicode UTF-8 can hold (no lone surrogates), including names that NFC changes.
names = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["e\u0301", "\u00e9", "A\u030a", "\u212b", "\u1e9b\u0323", "", " ", "."]),
)

# Tahoe cannot store a CHK verify cap in a directory (its node has no caps to give);
# shoal stores it as a read-only immutable child, so comparisons leave it out.
tahoe_caps = caps.filter(lambda c: not isinstance(c, CHKVerifierCap))


@st.composite
def cap_texts(draw, allow_chk_verifier: bool = False) -> str | None:
    """Text for a child's cap slot: any family, unknown, prefixed, malformed, or none."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.sampled_from(["", "URI:CHK:nope", "URI:SSK:a:b", "URI:DIR2-LIT:!!",
                                     "x-tahoe-future-test-writeable:x", "x-tahoe-future-test-mutable:y"]))
    cap = draw(caps if allow_chk_verifier else tahoe_caps)
    text = cap.text if isinstance(cap, UnknownCap) else cap.to_string()
    prefix = draw(st.sampled_from(["", "", "", "ro.", "imm."]))
    return prefix + text


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False), st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


def _tahoe_is_an_object(metadata: dict) -> dict:
    """Tahoe crashes on a 'tahoe' value that is not an object (shoal replaces it)."""
    if "tahoe" in metadata and not isinstance(metadata["tahoe"], dict):
        metadata["tahoe"] = {}
    return metadata


metadata_dicts = st.dictionaries(
    st.one_of(st.text(max_size=8), st.sampled_from(["tahoe", "ctime", "mtime", "no-write"])),
    st.one_of(
        json_values,
        st.fixed_dictionaries({}, optional={"linkcrtime": st.floats(0, 2e9), "linkmotime": st.floats(0, 2e9),
                                            "x": json_values}),
    ),
    max_size=4,
).map(_tahoe_is_an_object)
