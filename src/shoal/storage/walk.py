"""The resumable walk over a server's share tree, and the slice driver both crawlers run on.

A cycle visits the 1024 prefix directories of ``shares/`` in sorted order
(Tahoe-LAFS 1.20's ShareCrawler order), each bucket (storage index) in them
in sorted order and, for a walk by shares, each share by number. Where a
cycle stands is a ``Position``: resume at the first bucket at or after
``bucket`` in prefix ``prefix`` and, in that bucket, at the first share at
or after ``shnum`` (``None``: that bucket is done). ``ShareTree.walk`` turns
a position into the steps still to take (``Bucket`` or ``Share``, and a
``PrefixDone`` after each prefix directory), and each step's ``after`` is the
position once it is done, so a walk resumed from any saved position takes
every remaining step once. A prefix's bucket list is read once per cycle
(cached until the walk moves on); a bucket's shares are listed again at
each share. So a share that exists for the whole cycle is visited exactly
once; one removed before the walk reaches it is not; one added behind the
walk, or in a new bucket of a prefix already listed, waits for the next cycle.

``SlicedWalk`` is the skeleton of the lease crawler and the scrubber: its
state (position, this cycle's counts, the last cycles' records) lives in a
JSON file saved atomically after every slice (crawl_state), a cycle starts
at most every ``minimum_cycle_time``, and a slice takes steps until its
budget (units of the walker's choosing: buckets, bytes) or its time is
spent. The per-step work is the subclass's ``visit``, an ``async`` method
that hands the heavy part (reading, hashing, rewriting) to an ``offload``
function, as the slice hands over writing its state file: ``run_here`` runs it on the calling thread (``run_slice``, for
tests and tools, no reactor needed), and the node's housekeeping passes
shoal.cpu's pool so the reactor thread only keeps the books.
"""

import abc
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from shoal.storage import layout
from shoal.storage.crawl_state import close_cycle, cycle_due, load_state, save_state, state_bytes
from shoal.storage.layout import ALL_PREFIXES

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

T = TypeVar("T")
Offload = Callable[..., Awaitable[Any]]
PREFIXES = len(ALL_PREFIXES)
STATE_VERSION = 1
HISTORY_LENGTH = 10  # finished cycles' records kept in the state


@attrs.frozen
class Position:
    """Where a cycle stands: the next step is at or after this point of the walk order."""

    prefix: int = 0  # index into ALL_PREFIXES; PREFIXES once the cycle has walked them all
    bucket: str = ""  # the first bucket at or after this name ("": the prefix's first)
    shnum: int | None = 0  # in ``bucket``, the first share at or after this; None: the bucket is done


@attrs.frozen
class Bucket:
    """Visit one bucket directory (a walk by buckets)."""

    prefix: int
    name: str

    @property
    def after(self) -> Position:
        return Position(self.prefix, self.name, None)


@attrs.frozen
class Share:
    """Visit one share file (a walk by shares)."""

    prefix: int
    bucket: str
    shnum: int

    @property
    def after(self) -> Position:
        return Position(self.prefix, self.bucket, self.shnum + 1)


@attrs.frozen
class PrefixDone:
    """Every bucket of prefix directory ``prefix`` has been visited."""

    prefix: int

    @property
    def after(self) -> Position:
        return Position(self.prefix + 1)


Step = Bucket | Share | PrefixDone


class ShareTree:
    """The directory listings a walk reads, the current prefix's buckets cached."""

    def __init__(self, store: layout.StorageLayout) -> None:
        self._store = store
        self._cached: tuple[int, list[str]] = (-1, [])

    def forget(self) -> None:
        """Drop the cached listing (a new cycle lists every prefix afresh)."""
        self._cached = (-1, [])

    def buckets(self, prefix: int) -> list[str]:
        if self._cached[0] != prefix:
            self._cached = (prefix, self._store.list_buckets(ALL_PREFIXES[prefix]))
        return self._cached[1]

    def bucket_dir(self, prefix: int, name: str) -> str:
        return os.path.join(self._store.prefix_dir(ALL_PREFIXES[prefix]), name)

    def shares(self, prefix: int, name: str) -> list[int]:
        return [shnum for shnum, _path in layout.list_share_files(self.bucket_dir(prefix, name))]

    def walk(self, at: Position, *, by_share: bool) -> Iterator[Step]:
        """The steps from ``at`` to the end of the cycle, in order (see the module docstring)."""
        for prefix in range(at.prefix, PREFIXES):
            resume = at if prefix == at.prefix else Position(prefix)
            for name in self.buckets(prefix):
                if name < resume.bucket or (name == resume.bucket and resume.shnum is None):
                    continue
                if not by_share:
                    yield Bucket(prefix, name)
                    continue
                first = resume.shnum if name == resume.bucket and resume.shnum is not None else 0
                while True:  # listed again at each share: a share removed meanwhile is not a step
                    later = [shnum for shnum in self.shares(prefix, name) if shnum >= first]
                    if not later:
                        break
                    yield Share(prefix, name, later[0])
                    first = later[0] + 1
            yield PrefixDone(prefix)


async def run_here(fn: Callable[..., T], *args: Any) -> T:
    """An ``Offload`` that runs ``fn`` on the calling thread, at once."""
    return fn(*args)


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (one whose offload is ``run_here``)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("run_now: the coroutine waited; offload must be run_here")


class SlicedWalk(abc.ABC):
    """A cycle-by-cycle, slice-by-slice walk with durable state (see the module docstring).

    Subclasses say what a step costs and does (``visit``), how their position
    is kept in the state (``get_position``/``set_position``), what a cycle
    counts (``empty_cycle``) and what their state holds (``initial_state``),
    both plain functions set as static methods.
    """

    STATE_FILE: ClassVar[str]
    STATE_VERSION: ClassVar[int] = STATE_VERSION
    HISTORY_LENGTH: ClassVar[int] = HISTORY_LENGTH
    BY_SHARE: ClassVar[bool]
    # the counts of a cycle that has not counted anything yet; the whole state before the first cycle
    empty_cycle: Callable[[], dict[str, Any]]
    initial_state: Callable[[], dict[str, Any]]

    def __init__(self, server: "StorageServer", *, state_path: str | None, minimum_cycle_time: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self.minimum_cycle_time = minimum_cycle_time
        self._monotonic = monotonic
        self.state_path = state_path or os.path.join(server.layout.root, self.STATE_FILE)
        self.tree = ShareTree(server.layout)
        self._busy = False
        self.state = self._load()

    # -- the subclass's part ---------------------------------------------------

    @abc.abstractmethod
    def get_position(self) -> Position: ...

    @abc.abstractmethod
    def set_position(self, position: Position) -> None: ...

    @abc.abstractmethod
    async def visit(self, step: Bucket | Share, budget: int, offload: Offload) -> tuple[int, bool]:
        """Work on one step, about ``budget`` units (at least some progress); return
        (units spent, whether the step is done). Heavy work goes through ``offload``."""

    def cycle_record(self, record: dict[str, Any]) -> None:
        """Add to a finished cycle's record before it goes into the history."""
        return None

    def cycle_finished(self, record: dict[str, Any]) -> None:
        """After a cycle is filed (and the position reset)."""
        return None

    # -- state -------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        return load_state(self.state_path, self.STATE_VERSION, self.initial_state, self.empty_cycle)

    def save(self) -> None:
        """Write the state durably (temporary file, fsync, rename, directory fsync)."""
        save_state(self.state_path, self.state, self._server.layout.temp_path())

    # -- the driver --------------------------------------------------------------

    def default_budget(self) -> int | None:
        """The units a slice may spend when its caller names none (None: time only)."""
        return None

    async def slice(self, deadline_seconds: float, *, budget: int | None = None,
                    offload: Offload = run_here) -> bool:
        """Walk for about ``deadline_seconds`` or ``budget`` units (default
        ``default_budget()``), whichever comes first, and at least one step;
        save the state. True while the cycle has more to do, False between
        cycles (a slice already running makes this one a no-op answering True).
        ``run_now(walk.slice(...))`` runs a slice on the calling thread."""
        if budget is None:
            budget = self.default_budget()
        if self._busy:
            return True
        state = self.state
        if state["current-cycle"] is None:
            if not cycle_due(state, self._server.clock()):
                return False
            self._start_cycle()
        self._busy = True
        stop_at = self._monotonic() + deadline_seconds
        spent, worked = 0, False

        def exhausted() -> bool:
            return (budget is not None and spent >= budget) or self._monotonic() >= stop_at

        try:
            for step in self.tree.walk(self.get_position(), by_share=self.BY_SHARE):
                if isinstance(step, PrefixDone):
                    self.set_position(step.after)
                    if step.prefix + 1 < PREFIXES and exhausted():
                        return True
                    continue
                if worked and exhausted():
                    return True
                while True:
                    left = max(1, budget - spent) if budget is not None else 1 << 62
                    cost, done = await self.visit(step, left, offload)
                    spent, worked = spent + cost, True
                    if done:
                        self.set_position(step.after)
                        break
                    if exhausted():
                        return True
            self._finish_cycle()
            return False
        finally:
            # the state is taken here, written and fsync'd by the offload
            await offload(layout.write_file_durably, self.state_path, state_bytes(self.state),
                          self._server.layout.temp_path())
            self._busy = False

    def _start_cycle(self) -> None:
        state = self.state
        last = state["last-cycle-finished"]
        state["current-cycle"] = 0 if last is None else last + 1
        state["current-cycle-start-time"] = self._server.clock()
        state["cycle-to-date"] = self.empty_cycle()
        self.set_position(Position())
        self.tree.forget()

    def _finish_cycle(self) -> None:
        state = self.state
        record = dict(state["cycle-to-date"])
        self.cycle_record(record)
        close_cycle(state, record, self._server.clock(), self.HISTORY_LENGTH, self.minimum_cycle_time)
        self.set_position(Position())
        self.cycle_finished(record)

    def cycle_fraction(self) -> float:
        """How far the cycle in progress is, by prefix directories done (0 to 1)."""
        return self.get_position().prefix / PREFIXES


__all__ = [
    "Bucket",
    "Offload",
    "Position",
    "PrefixDone",
    "Share",
    "ShareTree",
    "SlicedWalk",
    "Step",
    "run_here",
    "run_now",
]
