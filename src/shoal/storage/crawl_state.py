"""The state file every crawler keeps: JSON, saved durably, trusted only if it parses.

A crawler's state (its position, the counts of the cycle in progress, the
last cycles' records) is saved after every slice: written to a temporary
file, fsync'd, renamed over the old one, the directory fsync'd. A missing,
unreadable or other-version file means a fresh start (at worst a cycle is
repeated). Finished cycles go into ``history`` keyed by cycle number, the
newest ``history_length`` kept, and the next cycle may start
``minimum_cycle_time`` after the finished one started.
"""

import json
from collections.abc import Callable
from typing import Any

from shoal.storage import layout


def base_state(version: int) -> dict[str, Any]:
    """The fields every crawler's state has, before its first cycle."""
    return {
        "version": version,
        "current-cycle": None,
        "last-cycle-finished": None,
        "current-cycle-start-time": None,
        "next-cycle-time": None,
        "history": {},
    }


def load_state(path: str, version: int, initial: Callable[[], dict[str, Any]],
               empty_cycle: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The saved state (missing keys filled from ``initial()``), or ``initial()``."""
    try:
        with open(path, "rb") as handle:
            state = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return initial()
    if not isinstance(state, dict) or state.get("version") != version:
        return initial()
    fresh = initial()
    fresh.update(state)
    for key, value in empty_cycle().items():
        fresh["cycle-to-date"].setdefault(key, value)
    return fresh


def state_bytes(state: dict[str, Any]) -> bytes:
    """The state as its file holds it."""
    return json.dumps(state, sort_keys=True).encode("utf-8")


def save_state(path: str, state: dict[str, Any], temp: str) -> None:
    layout.write_file_durably(path, state_bytes(state), temp)


def cycle_due(state: dict[str, Any], now: float) -> bool:
    """Whether a crawler between cycles may start the next one now."""
    next_time = state["next-cycle-time"]
    return next_time is None or now >= next_time


def close_cycle(state: dict[str, Any], record: dict[str, Any], now: float, history_length: int,
                minimum_cycle_time: float) -> None:
    """File the finished cycle's record in the history and schedule the next cycle."""
    start = state["current-cycle-start-time"]
    record["cycle-start-finish-times"] = [start, now]
    history = state["history"]
    history[str(state["current-cycle"])] = record
    for old in sorted(history, key=int)[:-history_length]:
        del history[old]
    state["last-cycle-finished"] = state["current-cycle"]
    state["current-cycle"] = None
    state["next-cycle-time"] = start + minimum_cycle_time


def json_copy(value: Any) -> Any:
    """A deep copy safe to hand to a status page."""
    return json.loads(json.dumps(value))
