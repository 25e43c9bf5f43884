"""`--eliot-destination file:PATH[,rotate_length=N][,max_rotated_files=N]`: an eliot log, as Tahoe's.

Facts (Tahoe-LAFS 1.20 util/eliotutil.py, scripts/runner.py): a global option,
given any number of times, each a ``KIND:ARGS`` description; the one kind is
``file``, whose first argument is a path (``-`` is stdout) and whose optional
``rotate_length`` (bytes, default 1 GiB) and ``max_rotated_files`` (default 10)
set the rotation of a Twisted ``LogFile``; ``@`` anywhere is refused (reserved
for an escape). While the node runs, every Twisted log event becomes one
``eliot:twisted`` message and every stdlib logging record at INFO or above one
``eliot:stdlib`` message, one JSON object a line, written off the reactor
thread. Every cap in a line is censored before it reaches the file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import IO, Any, cast

import attrs
from twisted.application import service
from twisted.logger import ILogObserver, eventAsJSON, globalLogPublisher
from twisted.python.logfile import LogFile
from zope.interface import implementer

from shoal.caps.censor import censor_caps
from shoal.errors import Fault, ShoalError

HELP = (
    "Available destinations:\n"
    "\tfile:<path>[,rotate_length=<bytes>][,max_rotated_files=<count>]\n"
    "\tSensible defaults are supplied for rotate_length and max_rotated_files\n"
    "\tif they are not given.\n"
)
DEFAULT_ROTATE_LENGTH = 1024 * 1024 * 1024
DEFAULT_MAX_ROTATED_FILES = 10
MAX_DESCRIPTION = 4096


class EliotDestinationError(ShoalError):
    """An --eliot-destination description cannot be used (the message says why)."""

    fault = Fault.CALLER
    exit_code = 2


@attrs.frozen
class FileDestinationSpec:
    """A parsed ``file:`` destination: a path ('-' for stdout) and its rotation."""

    path: str
    rotate_length: int = DEFAULT_ROTATE_LENGTH
    max_rotated_files: int = DEFAULT_MAX_ROTATED_FILES


def _positive_int(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise EliotDestinationError(f"--eliot-destination: {name} must be a positive integer, not {text!r}")
    return int(text)


def parse_destination(description: str) -> FileDestinationSpec:
    """One --eliot-destination value, checked as Tahoe 1.20 checks it (same messages)."""
    if len(description) > MAX_DESCRIPTION:
        raise EliotDestinationError("--eliot-destination: description too long")
    kind, sep, arg_text = description.partition(":")
    if not sep:
        raise EliotDestinationError("Eliot destination description must be formatted like <kind>:<args>.")
    if kind != "file":
        raise EliotDestinationError(f"Unknown destination description: {description}")
    if "@" in arg_text:
        raise EliotDestinationError(
            f"Unsupported escape character (@) in destination text ({arg_text!r})."
        )
    path, *options = arg_text.split(",")
    if not path:
        raise EliotDestinationError("--eliot-destination: file: needs a path (or - for stdout)")
    settings: dict[str, str] = {}
    for option in options:
        name, eq, value = option.partition("=")
        if not eq or name not in ("rotate_length", "max_rotated_files"):
            raise EliotDestinationError(
                f"--eliot-destination: unknown file option {option!r} (rotate_length=, max_rotated_files=)"
            )
        settings[name] = value
    return FileDestinationSpec(
        path=path,
        rotate_length=_positive_int("rotate_length", settings.get("rotate_length", str(DEFAULT_ROTATE_LENGTH))),
        max_rotated_files=_positive_int(
            "max_rotated_files", settings.get("max_rotated_files", str(DEFAULT_MAX_ROTATED_FILES))
        ),
    )


class CensoringFile:
    """A byte or text sink through which no cap passes (eliot writes JSON lines to it)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            text = censor_caps(data.decode("utf-8", "backslashreplace"))
            self._file.write(text.encode("utf-8"))
        else:
            self._file.write(censor_caps(data))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _open(spec: FileDestinationSpec) -> Any:
    if spec.path == "-":
        return CensoringFile(sys.stdout.buffer)
    path = os.path.abspath(os.path.expanduser(spec.path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log_file = LogFile(
        os.path.basename(path),
        os.path.dirname(path),
        rotateLength=spec.rotate_length,
        maxRotatedFiles=spec.max_rotated_files,
    )
    return CensoringFile(log_file)


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


@implementer(ILogObserver)
class _TwistedToEliot:
    """Re-publishes each Twisted log event as an ``eliot:twisted`` message (as Tahoe does)."""

    def __call__(self, event: dict) -> None:
        from eliot import Message

        fields = json.loads(eventAsJSON(event))
        fields.pop("log_time", None)  # eliot gives every message a timestamp of its own
        fields.pop("log_logger", None)
        fields.pop("message_type", None)
        Message.new(message_type="eliot:twisted", **fields).write()


class _StdlibToEliot(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from eliot import Message

        Message.new(
            message_type="eliot:stdlib",
            log_level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
        ).write()


class EliotLogging(service.MultiService):
    """While running: eliot writes each destination (in its own thread) and Twisted and
    stdlib logging feed it."""

    def __init__(self, specs: list[FileDestinationSpec], reactor: Any) -> None:
        super().__init__()
        from eliot import FileDestination
        from eliot.logwriter import ThreadedWriter

        self._files: list[IO[Any] | CensoringFile] = []
        for spec in specs:
            file = _open(spec)
            self._files.append(file)
            ThreadedWriter(FileDestination(file, json_default=_json_default), reactor).setServiceParent(self)
        self._twisted = cast(ILogObserver, _TwistedToEliot())
        self._stdlib = _StdlibToEliot(logging.INFO)
        self._cleanup: list[Callable[[], None]] = []

    def startService(self) -> None:
        root = logging.getLogger()
        root.addHandler(self._stdlib)
        globalLogPublisher.addObserver(self._twisted)
        self._cleanup = [
            lambda: globalLogPublisher.removeObserver(self._twisted),
            lambda: root.removeHandler(self._stdlib),
        ]
        super().startService()

    def stopService(self) -> Any:
        for undo in self._cleanup:
            undo()
        self._cleanup = []
        return super().stopService()
