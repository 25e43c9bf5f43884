"""Directories cross between shoal and Tahoe-LAFS 1.20 on one mixed grid.

The shared mixed grid (tests/interop/conftest.py: a shoal introducer, 2 shoal and
2 Tahoe storage nodes, a Tahoe client driven through its web API: GET ?t=json,
PUT /uri/$DIRCAP/name, POST t=mkdir ...) and a shoal client in this process (shoal.dirnode over a storage broker that learns
the servers from the introducer; the web API does not expose directories yet).

1. Tahoe lists and edits a directory shoal made (SDMF, MDMF), and shoal sees
   Tahoe's edits.
2. shoal lists and edits a directory Tahoe made (SDMF, MDMF), and Tahoe sees
   shoal's edits.
3. Immutable directories (DIR2-CHK, DIR2-LIT) both ways.
"""

import io
import json
import types
import urllib.parse
import urllib.request
from typing import Any

import pytest
from foolscap.api import Tub
from twisted.internet import defer

from shoal.caps import CHKDirectoryCap, LiteralDirectoryCap, parse_cap
from shoal.dirnode import DirectoryNode, ImmutableFileNode, NodeMaker
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.immutable.params import EncodingParams
from shoal.introducer.client import IntroducerClient
from shoal.mutable import MutableClient
from shoal.node.files import ClientFiles
from shoal.testing import reactor_thread
from tests.interop.conftest import MIXED_SHARES

K, HAPPY, N = MIXED_SHARES
FUTURE = "URI:FUTURE:from-the-future"


class InProcessClient:
    """A shoal client inside this process: a Tub, a storage broker fed by an
    introducer, and a NodeMaker over them. Drive it with `run(fn, ...)`."""

    def __init__(self, introducer_furl: str, servers: int, k: int = K, happy: int = HAPPY, n: int = N,
                 secret: bytes = b"interop-convergence-secret-32by!") -> None:
        self.tub: Any = None
        self.broker: StorageBroker | None = None
        self.introducer: IntroducerClient | None = None
        reactor_thread.call(self._start, introducer_furl)
        reactor_thread.call(lambda: self.broker.when_connected_enough(servers))  # type: ignore[union-attr]
        identity = types.SimpleNamespace(convergence_secret=secret, lease_secret=b"interop-lease-secret-32-bytes-ok")
        assert self.broker is not None
        files = ClientFiles(self.broker, EncodingParams(k, happy, n), identity)
        self.maker = NodeMaker(files, MutableClient(self.broker, lease_secret=identity.lease_secret, k=k, n=n))

    def _start(self, furl: str) -> None:
        self.tub = Tub()
        self.tub.startService()
        self.broker = StorageBroker(foolscap_connector(self.tub))
        self.introducer = IntroducerClient(self.tub, furl, nickname="dirnode-client", sequencer=lambda: (1, "x"))
        self.broker.use_introducer(self.introducer)
        self.introducer.startService()
        self.broker.startService()

    def run(self, fn, *args, **kw) -> Any:
        return reactor_thread.call(lambda: defer.ensureDeferred(fn(*args, **kw)))

    def upload(self, data: bytes) -> str:
        return self.run(self.maker.files.upload, io.BytesIO(data), len(data)).cap

    def close(self) -> None:
        def stop() -> Any:
            assert self.broker is not None and self.introducer is not None
            return defer.DeferredList([defer.maybeDeferred(s.stopService)
                                       for s in (self.broker, self.introducer, self.tub)])
        reactor_thread.call(stop)


# --- Tahoe's web API ------------------------------------------------------------

def web(url: str, method: str, path: str, body: bytes | None = None, **query: str) -> str:
    q = ("?" + urllib.parse.urlencode(query)) if query else ""
    req = urllib.request.Request(url.rstrip("/") + path + q, data=body, method=method)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode("utf-8")


def quoted(cap: str, name: str = "") -> str:
    return "/uri/" + urllib.parse.quote(cap, safe="") + ("/" + urllib.parse.quote(name) if name else "")


def tahoe_listing(url: str, dircap: str) -> dict[str, tuple[str, dict]]:
    kind, info = json.loads(web(url, "GET", quoted(dircap), t="json"))
    assert kind == "dirnode"
    return {name: (child_kind, props) for name, (child_kind, props) in info["children"].items()}


def same_listing(shoal_entries, tahoe_children) -> None:
    """shoal's listing and Tahoe's t=json say the same names, caps and metadata."""
    assert sorted(shoal_entries) == sorted(tahoe_children)
    for name, entry in shoal_entries.items():
        _kind, props = tahoe_children[name]
        assert (entry.rw_cap, entry.ro_cap) == (props.get("rw_uri"), props.get("ro_uri")), name
        assert entry.metadata == props["metadata"], name


# --- the grid -------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed(mixed_grid):
    """The shared mixed grid's Tahoe client, and a shoal client in this process."""
    client = InProcessClient(mixed_grid.furl, len(mixed_grid.storage))
    try:
        yield types.SimpleNamespace(turl=mixed_grid.turl, shoal=client)
    finally:
        client.close()


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_tahoe_reads_and_edits_a_shoal_directory(mixed, fmt):
    s, turl = mixed.shoal, mixed.turl
    file_data = b"made by shoal " * 500
    file_cap = s.upload(file_data)
    sub = s.run(s.maker.create_directory)
    d = s.run(s.maker.create_directory, {
        "file": file_cap, "sub": sub.cap.to_string(), "unknown": ("ro." + FUTURE, None, {"user": "kept"}),
        "caf\u00e9": ("URI:LIT:mfrgg", None, {"k": [1, 2.5, None]}),
    }, format=fmt)
    s.run(d.set_child, "linked", "URI:LIT:nfrgg")
    dircap = d.cap.to_string()
    listing = tahoe_listing(turl, dircap)
    same_listing(s.run(d.list), listing)
    assert listing["sub"][0] == "dirnode" and listing["unknown"][0] == "unknown"
    assert listing["file"][0] == "filenode" and listing["file"][1]["size"] == len(file_data)
    assert web(turl, "GET", quoted(dircap, "file")).encode() == file_data  # Tahoe follows shoal's link
    # Tahoe edits shoal's directory ...
    tahoe_data = b"made by tahoe " * 400
    web(turl, "PUT", quoted(dircap, "tfile"), tahoe_data)
    web(turl, "PUT", quoted(dircap, "tlink"), sub.readonly_cap.to_string().encode(), t="uri")
    tsub = web(turl, "POST", quoted(dircap), t="mkdir", name="tsub", format=fmt)
    web(turl, "DELETE", quoted(dircap, "linked"))
    web(turl, "POST", quoted(dircap), t="rename", from_name="caf\u00e9", to_name="tea")
    # ... and shoal sees exactly what Tahoe lists.
    entries = s.run(d.list)
    same_listing(entries, tahoe_listing(turl, dircap))
    assert sorted(entries) == ["file", "sub", "tea", "tfile", "tlink", "tsub", "unknown"]
    assert entries["tsub"].rw_cap == tsub
    assert entries["tea"].metadata["k"] == [1, 2.5, None]
    tfile = s.maker.node_for_entry(entries["tfile"])
    assert isinstance(tfile, ImmutableFileNode) and s.run(tfile.download) == tahoe_data
    # shoal writes into the subdirectory Tahoe made; Tahoe lists it.
    tsub_node = s.maker.node_for_entry(entries["tsub"])
    assert isinstance(tsub_node, DirectoryNode)
    s.run(tsub_node.set_child, "deep", file_cap, metadata={"from": "shoal"})
    same_listing(s.run(tsub_node.list), tahoe_listing(turl, tsub))


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_shoal_reads_and_edits_a_tahoe_directory(mixed, fmt):
    s, turl = mixed.shoal, mixed.turl
    dircap = web(turl, "POST", "/uri", t="mkdir", format=fmt)
    assert dircap.startswith("URI:DIR2-MDMF:" if fmt == "MDMF" else "URI:DIR2:")
    web(turl, "PUT", quoted(dircap, "f"), b"tahoe file " * 300)
    sub = web(turl, "POST", quoted(dircap), t="mkdir", name="sub")
    web(turl, "PUT", quoted(dircap, "unk"), ("ro." + FUTURE).encode(), t="uri")
    web(turl, "PUT", quoted(dircap, "\u00e9t\u00e9"), b"URI:LIT:", t="uri")
    d = s.maker.node_for(dircap)
    assert isinstance(d, DirectoryNode) and d.cap == parse_cap(dircap)
    same_listing(s.run(d.list), tahoe_listing(turl, dircap))
    # shoal edits Tahoe's directory; Tahoe lists the result.
    s.run(d.set_child, "s", "URI:LIT:mfrgg", metadata={"by": "shoal"})
    removed = s.run(d.unlink, "f")
    assert removed.ro_cap.startswith("URI:CHK:")
    s.run(d.move_child_to, "sub", d, "sub2")
    made = s.run(d.create_subdirectory, "ssub", {"x": "URI:LIT:"}, format="MDMF")
    listing = tahoe_listing(turl, dircap)
    same_listing(s.run(d.list), listing)
    assert sorted(listing) == ["s", "ssub", "sub2", "unk", "\u00e9t\u00e9"]
    assert listing["sub2"][1]["rw_uri"] == sub and listing["s"][1]["metadata"]["by"] == "shoal"
    assert listing["ssub"][1]["rw_uri"] == made.cap.to_string()
    same_listing(s.run(made.list), tahoe_listing(turl, made.cap.to_string()))
    # A read-only view through Tahoe of shoal's subdirectory.
    ro = tahoe_listing(turl, made.readonly_cap.to_string())
    assert ro["x"][1]["ro_uri"] == "URI:LIT:"


def test_immutable_directories_both_ways(mixed):
    s, turl = mixed.shoal, mixed.turl
    file_cap = s.upload(b"immutable child " * 200)
    mine = s.run(s.maker.create_immutable_directory, {
        "file": file_cap, "lit": ("URI:LIT:mfrgg", None, {"n": 1}), "unk": "imm." + FUTURE,
    })
    assert isinstance(mine.cap, CHKDirectoryCap)
    same_listing(s.run(mine.list), tahoe_listing(turl, mine.cap.to_string()))
    tiny = s.run(s.maker.create_immutable_directory, {"a": "URI:LIT:"})
    assert isinstance(tiny.cap, LiteralDirectoryCap)
    same_listing(s.run(tiny.list), tahoe_listing(turl, tiny.cap.to_string()))
    children = {
        "file": ["filenode", {"ro_uri": file_cap, "metadata": {"size": 3200}}],
        "dir": ["dirnode", {"ro_uri": mine.cap.to_string()}],
        "unk": ["unknown", {"ro_uri": "ro." + FUTURE}],
    }
    theirs = web(turl, "POST", "/uri", json.dumps(children).encode(), t="mkdir-immutable")
    assert theirs.startswith("URI:DIR2-CHK:")
    node = s.maker.node_for(theirs)
    assert isinstance(node, DirectoryNode)
    entries = s.run(node.list)
    same_listing(entries, tahoe_listing(turl, theirs))
    assert entries["unk"].ro_cap == "imm." + FUTURE
    assert s.run(node.get_at_path, ["dir", "lit"]).metadata == {"n": 1}
