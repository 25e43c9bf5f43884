"""A disk that fills under the storage server (reserved_space 0, statvfs still
showing room): the OSError of a write becomes NoSpaceError (the server's "no
room" that clients report as full), and nothing partial is left behind."""

import builtins
import errno
import os

import pytest

from shoal.storage import NoSpaceError

SI = b"\x22" * 16
RENEW, CANCEL = b"r" * 32, b"c" * 32


def enospc_on_write(monkeypatch, fragment: str) -> None:
    """open() of paths containing `fragment` gives files whose writes fail with ENOSPC."""
    real_open = builtins.open

    class Full:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    def fake_open(path, mode="r", *args, **kw):
        handle = real_open(path, mode, *args, **kw)
        if fragment in str(path) and ("w" in mode or "+" in mode or "x" in mode):
            return Full(handle)
        return handle

    monkeypatch.setattr(builtins, "open", fake_open)


def incoming_files(server) -> list[str]:
    out = []
    for _root, _dirs, files in os.walk(os.path.join(server.layout.shares_dir, "incoming")):
        out += files
    return out


def test_allocating_on_a_full_disk_refuses_and_leaves_nothing(server, monkeypatch):
    enospc_on_write(monkeypatch, "incoming")
    already, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0, 1}, 100)
    assert (already, writers) == (set(), {})
    assert incoming_files(server) == []
    assert server.space.pending == 0
    monkeypatch.undo()
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0, 1}, 100)  # a later try works
    assert set(writers) == {0, 1}


def test_a_write_on_a_full_disk_is_no_space_naming_the_share(server, monkeypatch):
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 100)
    enospc_on_write(monkeypatch, "incoming")
    with pytest.raises(NoSpaceError, match=r"share \w+/0: write at offset 0: the disk is full \(No space left on device\)"):
        writers[0].write(0, b"x" * 100)
