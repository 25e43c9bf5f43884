"""Fixtures for the storage unit tests: a fake clock, a fake statvfs, a server factory."""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shoal.storage import StorageServer
from tests.storage_suite.harness import NODEID, FakeClock

GiB = 1 << 30


class FakeStatvfs:
    """statvfs answers for a disk whose free space the test sets (bytes, in 4 KiB blocks)."""

    f_frsize = 4096

    def __init__(self, free: int = 100 * GiB, total: int = 200 * GiB) -> None:
        self.total = total
        self.free = free

    @property
    def f_blocks(self) -> int:
        return self.total // self.f_frsize

    @property
    def f_bfree(self) -> int:
        return self.free // self.f_frsize

    @property
    def f_bavail(self) -> int:
        return self.free // self.f_frsize

    def __call__(self, path: str) -> "FakeStatvfs":
        assert os.path.isdir(path)
        return self


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def disk() -> FakeStatvfs:
    return FakeStatvfs()


@pytest.fixture
def storage_dir(tmp_path: Any) -> str:
    return os.path.join(str(tmp_path), "storage")


@pytest.fixture
def make_server(storage_dir: str, clock: FakeClock, disk: FakeStatvfs) -> Iterator[Callable[..., StorageServer]]:
    made: list[StorageServer] = []

    def make(**options: Any) -> StorageServer:
        options.setdefault("clock", clock)
        options.setdefault("statvfs", disk)
        server = StorageServer(storage_dir, NODEID, **options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.shutdown()


@pytest.fixture
def server(make_server: Callable[..., StorageServer]) -> StorageServer:
    return make_server()
