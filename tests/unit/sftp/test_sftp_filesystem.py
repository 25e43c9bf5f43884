"""One account's tree (shoal.sftp.filesystem) on real storage servers in process
(LocalGrid): the rules the SFTP operations keep, without a client."""

import io

import pytest
from twisted.internet import defer

from shoal.sftp.filesystem import AccountFS, Failure, NoSuchFile, PermissionDenied
from shoal.testing.local_grid import LocalGrid
from tests.local_maker import node_maker

K, HAPPY, N = 2, 3, 3


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def maker(grid):
    return node_maker(grid, K, HAPPY, N)


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


@pytest.fixture
def fs(grid, maker):
    root = run(grid, maker.create_directory)
    return AccountFS(maker, maker.files, root.cap.to_string())


def put(grid, fs, names, data):
    run(grid, fs.upload, names, io.BytesIO(data), len(data))


def test_tree_operations(grid, fs):
    run(grid, fs.mkdir, ("a",))
    run(grid, fs.mkdir, ("a", "b"))
    put(grid, fs, ("a", "b", "f.txt"), b"x" * 5000)
    assert [(n, a.is_dir) for n, a in run(grid, fs.listdir, ("a",))] == [("b", True)]
    st = run(grid, fs.stat, ("a", "b", "f.txt"))
    assert st.size == 5000 and not st.is_dir and st.mtime > 0
    node = run(grid, fs.file_node, ("a", "b", "f.txt"))
    assert run(grid, fs.read, node, 4990, 100) == b"x" * 10
    assert run(grid, fs.read, node, 5000, 100) == b""
    with pytest.raises(Failure, match="exists"):
        run(grid, fs.mkdir, ("a",))
    with pytest.raises(Failure, match="not empty"):
        run(grid, fs.rmdir, ("a", "b"))
    with pytest.raises(Failure, match="is a directory"):
        run(grid, fs.remove, ("a",))
    with pytest.raises(Failure, match="into itself"):
        run(grid, fs.rename, ("a",), ("a", "b", "a2"), overwrite=True)
    with pytest.raises(NoSuchFile):
        run(grid, fs.stat, ("a", "b", "f.txt", "deeper"))
    # a move across directories, then a plain rename refusing an existing name
    run(grid, fs.rename, ("a", "b", "f.txt"), ("g.txt",), overwrite=False)
    put(grid, fs, ("h.txt",), b"h")
    with pytest.raises(Failure, match="exists"):
        run(grid, fs.rename, ("g.txt",), ("h.txt",), overwrite=False)
    run(grid, fs.rename, ("g.txt",), ("h.txt",), overwrite=True)
    assert run(grid, fs.stat, ("h.txt",)).size == 5000
    run(grid, fs.rename, ("h.txt",), ("h.txt",), overwrite=False)  # onto itself: nothing
    with pytest.raises(Failure, match="is a directory"):
        put(grid, fs, ("a",), b"over a directory")
    run(grid, fs.rmdir, ("a", "b"))
    run(grid, fs.rmdir, ("a",))
    run(grid, fs.remove, ("h.txt",))
    assert run(grid, fs.listdir, ()) == []
    with pytest.raises(PermissionDenied):
        run(grid, fs.rmdir, ())


def test_read_only_root(grid, maker, fs):
    put(grid, fs, ("kept.txt",), b"kept")
    ro = AccountFS(maker, maker.files, fs.root().readonly_cap.to_string())
    assert run(grid, ro.stat, ()).readonly
    assert run(grid, ro.stat, ("kept.txt",)).size == 4
    for op, args in ((ro.mkdir, (("d",),)), (ro.remove, (("kept.txt",),)),
                     (ro.upload, (("n.txt",), io.BytesIO(b"n"), 1))):
        with pytest.raises(PermissionDenied):
            run(grid, op, *args)
    with pytest.raises(PermissionDenied):
        run(grid, ro.rename, ("kept.txt",), ("k2.txt",), overwrite=False)


def test_root_not_a_directory(grid, maker, fs):
    put(grid, fs, ("f.txt",), b"f" * 100)
    entry = run(grid, fs.entry, ("f.txt",))
    with pytest.raises(Failure, match="root is not a directory"):
        run(grid, AccountFS(maker, maker.files, entry.ro_cap).stat, ("x",))
