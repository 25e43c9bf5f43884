"""Progress bars for transfers (rich), shown on stderr, only on a terminal and
only once a transfer has taken longer than a second: quick commands and
scripts see no bar at all, and stdout stays clean for caps and data."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

DELAY = 1.0


class Transfer:
    """Counts bytes; draws a bar once `delay` seconds have passed (if `stream` is a terminal).

    A timer shows the bar after `delay` even when no bytes move (a node still
    encoding, a slow first answer); rich then refreshes it from its own thread.
    `stream`, `clock` and `force_terminal` exist so tests can drive it without a tty.
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        delay: float = DELAY,
        force_terminal: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()
        self._delay = delay
        terminal = force_terminal if force_terminal is not None else _isatty(self._stream)
        self._enabled = terminal
        self._force = force_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._timer: threading.Timer | None = None
        if terminal:
            self._timer = threading.Timer(delay, self.poke)
            self._timer.daemon = True
            self._timer.start()

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def __call__(self, n: int) -> None:
        self.done += n
        self.poke()

    def poke(self) -> None:
        """Show the bar if it is due, and bring it up to date."""
        with self._lock:
            if self._closed:
                return
            if self._progress is None:
                if not self._enabled or self._clock() - self._start < self._delay:
                    return
                self._show()
            assert self._progress is not None and self._task is not None
            self._progress.update(self._task, completed=self.done, total=self.total)

    def _show(self) -> None:
        console = Console(file=self._stream, force_terminal=self._force, stderr=self._stream is sys.stderr)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total, completed=self.done)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, completed=self.done, total=self.total)
                self._progress.stop()

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
