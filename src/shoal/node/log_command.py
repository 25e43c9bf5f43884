"""`shoal log NODEDIR`: show a node's log (logs/shoal.log) and follow it, as `tail -F` would.

Prints the last --lines lines (default 20), readable (`TIME LEVEL source: message`,
a failure's traceback indented below) or as the stored JSON lines with --json,
then keeps printing new lines until Ctrl-C; --no-follow stops after the last
line. Following survives rotation: when shoal.log is replaced or shrinks, the
new file is read from its start.
"""

import argparse
import json
import os
import sys
import time
from collections import deque
from typing import TextIO

from shoal.errors import Fault, ShoalError
from shoal.node.logs import LOG_FILE

POLL_SECONDS = 0.25
MAX_LINES = 100_000


class LogCommandError(ShoalError):
    """The log cannot be shown (no node directory, no log yet, a bad --lines)."""

    fault = Fault.CALLER
    exit_code = 1


class LogUsageError(LogCommandError):
    """A bad option value (exit status 2, as argparse's own usage errors)."""

    exit_code = 2


def readable(raw: str) -> str:
    """One stored JSON line as a person reads it; a line that is not JSON is shown as it is."""
    try:
        record = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(record, dict):
        return raw
    time_, level, source = (str(record.get(k, "?")) for k in ("time", "level", "source"))
    text = f"{time_} {level:<7} {source}: {record.get('message', '')}"
    failure = record.get("failure")
    if isinstance(failure, str) and failure.strip():
        text += "\n" + "\n".join("    " + line for line in failure.rstrip().splitlines())
    return text


def _emit(raw: str, as_json: bool, out: TextIO) -> None:
    raw = raw.rstrip("\n")
    if raw:
        out.write((raw if as_json else readable(raw)) + "\n")


def show(path: str, lines: int, as_json: bool, follow: bool, out: TextIO, poll: float = POLL_SECONDS) -> None:
    """Print the last `lines` lines of `path`, then (when `follow`) what is appended to it."""
    f = open(path, encoding="utf-8", errors="replace")
    try:
        for raw in deque(f, maxlen=lines) if lines else ():
            _emit(raw, as_json, out)
        f.seek(0, os.SEEK_END)
        out.flush()
        pending = ""
        while follow:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    _emit(pending, as_json, out)
                    pending = ""
                    out.flush()
                continue
            if _replaced(f, path):
                f.close()
                f = open(path, encoding="utf-8", errors="replace")
                continue
            time.sleep(poll)
    finally:
        f.close()


def _replaced(f: TextIO, path: str) -> bool:
    """Whether `path` is now another file than the one open (rotated) or shorter than read so far."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False  # between the rename and the new file: wait
    mine = os.fstat(f.fileno())
    return (st.st_ino, st.st_dev) != (mine.st_ino, mine.st_dev) or st.st_size < f.tell()


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = groups.add_parser(
        "log", help="show and follow a node's log (NODEDIR/logs/shoal.log)",
        description="Show the last lines of a node's log, then follow it until Ctrl-C.",
        epilog="examples:\n  shoal log ~/grid/store1\n  shoal log --no-follow --lines 100 store1\n"
               "  shoal log --json store1 | jq -r 'select(.level == \"ERROR\") | .message'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("nodedir", nargs="?", default=".", help="the node directory (default: .)")
    p.add_argument("-n", "--lines", type=int, default=20, help="how many lines to show first (default 20)")
    p.add_argument("--json", action="store_true", help="the stored JSON lines, one object each")
    p.add_argument("--no-follow", dest="follow", action="store_false", help="stop after the last line")
    p.set_defaults(func=_log)


def _log(args: argparse.Namespace) -> int:
    if not 0 <= args.lines <= MAX_LINES:
        raise LogUsageError(f"--lines {args.lines}: expected 0 to {MAX_LINES}")
    nodedir = os.path.abspath(os.path.expanduser(args.nodedir))
    path = os.path.join(nodedir, LOG_FILE)
    if not os.path.isdir(nodedir):
        raise LogCommandError(f"{nodedir}: no such node directory")
    if not os.path.exists(path):
        raise LogCommandError(f"{path}: no log yet (has the node run with this version of shoal?)")
    try:
        show(path, args.lines, args.json, args.follow, sys.stdout)
    except KeyboardInterrupt:
        return 0
    return 0
