"""A Blockstack storage driver backed by a shoal client node's web API.

Implements the driver contract of shared/reference/app-apis.md section 2.1 on
top of Tahoe-LAFS 1.20 web API calls (docs/frontends/webapi.rst) and one shoal
extension, a conditional overwrite (``PUT /uri/$WRITECAP`` with ``If-Match``
the ETag of the version read; 412 if it moved):
``POST /uri?t=mkdir`` (the driver's directories), ``PUT /uri/$DIRCAP/name``
(immutable data, CHK; with ``format=SDMF&replace=false``: a new id's mutable
file, created and linked in one request, 409 if the name is taken),
``PUT /uri/$WRITECAP`` (overwrite it), ``GET /uri/$DIRCAP/name?t=json`` (find
it), ``DELETE``.

The driver keeps a small JSON state file: its directory caps (so a restarted
client finds its data again) and, per mutable id, the highest record version it
wrote or read; in memory, the ETag of the version of each id it last wrote or
read, so an overwrite names it in If-Match without reading it first. A read
that returns an older version (a lagging storage server, a directory not yet
showing a new entry) is retried with growing pauses and never handed to the
caller. Blocking stdlib HTTP only: Blockstack calls drivers
synchronously.
"""

import configparser
import json
import logging
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from shoal.apps.blockstack.records import (
    KIND_TOMBSTONE,
    Record,
    RecordError,
    as_bytes,
    data_kind,
    immutable_name,
    make_url,
    mutable_name,
    normalize_hash,
    pack_immutable,
    pack_record,
    parse_url,
    sha256_hex,
    tombstone_name,
    unpack_immutable,
    unpack_record,
)
from shoal.errors import Fault, NotFoundError, ShoalError

log = logging.getLogger(__name__)

SECTION = "shoal"
DIRS = ("immutable", "mutable", "tombstones")
CLASSES = ["read_public", "write_private", "read_private"]


class DriverError(ShoalError):
    """The shoal node answered a driver request with an unexpected status (names the call):
    the node's trouble, not the driver's."""

    fault = Fault.SERVER


class NotFound(DriverError, NotFoundError):
    """The node has no such file or record."""

    fault = Fault.CALLER


class Conflict(DriverError):
    """The node refused to link a name that is already there (409, replace=false)."""

    fault = Fault.CALLER


class VersionMoved(DriverError):
    """A conditional write (If-Match) found the record at another version (412):
    another writer got there first."""

    fault = Fault.CALLER


_CAP_IN_PATH = re.compile(r"(/uri/)[^/?]+")


def redacted(path: str) -> str:
    """A web API path fit for an error or a log line: its cap replaced by [cap]."""
    return _CAP_IN_PATH.sub(r"\1[cap]", path)


CAS_ATTEMPTS = 8  # conditional writes of one put before giving up on a busy id


class ShoalDriver:
    """One driver client: a node URL, the driver's directories, and its version pins."""

    def __init__(self, node_url: str, state_file: str, *, timeout: float = 60,
                 read_attempts: int = 12, read_pause: float = 0.25) -> None:
        self.node_url = node_url.rstrip("/")
        self.state_file = state_file
        self.timeout = timeout
        self.read_attempts = read_attempts
        self.read_pause = read_pause
        self.dircaps: dict[str, str] = {}
        self.pins: dict[str, int] = {}
        self.writecaps: dict[str, str] = {}
        # per mutable id, (record version, ETag) of the version this driver last wrote or
        # read: the If-Match of its next write (kept in memory only)
        self.tags: dict[str, tuple[int, str]] = {}
        self._lock = threading.RLock()

    # -- HTTP ---------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes | None = None,
              ok: tuple[int, ...] = (200, 201)) -> bytes:
        return self._call_tagged(method, path, body, ok)[0]

    def _call_tagged(self, method: str, path: str, body: bytes | None = None, ok: tuple[int, ...] = (200, 201),
                     headers: Mapping[str, str] | None = None) -> tuple[bytes, str | None]:
        """(body, ETag header or None)."""
        req = urllib.request.Request(self.node_url + path, data=body, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.read(), r.headers.get("ETag")
        except urllib.error.HTTPError as e:
            detail = e.read()[:200].decode("utf-8", "replace")
            where = f"{method} {redacted(path)}"  # the path holds a cap: never in an error
            if e.code == 404:
                raise NotFound(f"{where}: 404 {detail}") from None
            if e.code == 409:
                raise Conflict(f"{where}: 409 {detail}") from None
            if e.code == 412:
                raise VersionMoved(f"{where}: 412 {detail}") from None
            if e.code in ok:
                return b"", None
            raise DriverError(f"{where}: node answered {e.code} {detail}") from None

    def _entry(self, dircap: str, name: str) -> str:
        return f"/uri/{quote(dircap, safe='')}/{quote(name, safe='')}"

    # -- state --------------------------------------------------------------

    def open(self) -> None:
        """Load the state file, or make the driver's directories on the grid and save them."""
        if os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as f:
                state = json.load(f)
            self.dircaps = dict(state["dircaps"])
            self.pins = {k: int(v) for k, v in state.get("pins", {}).items()}
            self.writecaps = dict(state.get("writecaps", {}))
            return
        root = self._call("POST", "/uri?t=mkdir").decode("ascii").strip()
        caps = {"root": root}
        for name in DIRS:
            caps[name] = self._call("POST", f"/uri/{quote(root, safe='')}?t=mkdir&name={name}").decode(
                "ascii").strip()
        self.dircaps = caps
        self._save()

    def _save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.state_file))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".shoal-driver-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"dircaps": self.dircaps, "pins": self.pins, "writecaps": self.writecaps}, f)
        os.replace(tmp, self.state_file)

    def _pin(self, data_id: str, version: int) -> None:
        with self._lock:
            if version > self.pins.get(data_id, -1):
                self.pins[data_id] = version
                self._save()

    # -- immutable ----------------------------------------------------------

    def put_immutable(self, data_hash: str, data: bytes | str) -> bool:
        key = normalize_hash(data_hash)
        raw = as_bytes(data)
        if key is None or sha256_hex(raw) != key:
            log.warning("put_immutable: data does not hash to %r", data_hash)
            return False
        self._call("PUT", self._entry(self.dircaps["immutable"], immutable_name(key)), pack_immutable(data))
        return True

    def get_immutable(self, data_hash: str) -> bytes | str | None:
        key = normalize_hash(data_hash)
        if key is None:
            return None
        try:
            stored = self._call("GET", self._entry(self.dircaps["immutable"], immutable_name(key)))
        except NotFound:
            return None
        data = unpack_immutable(stored, key)
        if data is None:
            log.warning("get_immutable: grid returned %d bytes not hashing to %s", len(stored), key)
        return data

    def delete_immutable(self, data_hash: str, txid: str, tombstone: str | bytes) -> bool:
        key = normalize_hash(data_hash)
        if key is None:
            return False
        self._store_tombstone("immutable", key, {"txid": str(txid), "tombstone": as_bytes(tombstone).decode(
            "utf-8", "replace")})
        try:
            self._call("DELETE", self._entry(self.dircaps["immutable"], immutable_name(key)))
        except NotFound:
            pass
        return True

    def _store_tombstone(self, kind: str, key: str, body: Mapping[str, Any]) -> None:
        data = json.dumps({"kind": kind, "key": key, "time": time.time(), **body}).encode("utf-8")
        self._call("PUT", self._entry(self.dircaps["tombstones"], tombstone_name(kind, key)), data)

    # -- mutable ------------------------------------------------------------

    def mutable_url(self, data_id: str) -> str:
        return make_url(self._mutable_readcap(), data_id)

    def _mutable_readcap(self) -> str:
        if "mutable-ro" not in self.dircaps:
            kind, info = json.loads(self._call("GET", f"/uri/{quote(self.dircaps['mutable'], safe='')}?t=json"))
            self.dircaps["mutable-ro"] = info["ro_uri"]
            self._save()
        return self.dircaps["mutable-ro"]

    def _writecap(self, data_id: str) -> str | None:
        cap = self.writecaps.get(data_id)
        if cap is None:
            try:
                kind, info = json.loads(self._call(
                    "GET", self._entry(self.dircaps["mutable"], mutable_name(data_id)) + "?t=json"))
            except NotFound:
                return None
            cap = info.get("rw_uri")
            if not cap:
                return None
            self.writecaps[data_id] = cap
        return cap

    def _read_record(self, path: str) -> Record | None:
        return self._read_tagged(path)[0]

    def _read_tagged(self, path: str) -> tuple[Record | None, str | None]:
        """(record, the ETag of the version read) of a mutable file."""
        try:
            body, tag = self._call_tagged("GET", path)
        except NotFound:
            return None, None
        return unpack_record(body), tag

    def _fresh(self, data_id: str, fetch: Any) -> Record | None:
        """fetch() until it gives a record at least as new as the pin of `data_id` (None if absent)."""
        pin = self.pins.get(data_id, -1)
        pause = self.read_pause
        for attempt in range(self.read_attempts):
            record = fetch()
            if record is not None and record.version >= pin:
                self._pin(data_id, record.version)
                return record
            if record is None and pin < 0:
                return None
            if attempt + 1 < self.read_attempts:
                log.info("read of %r older than version %d; retrying in %.2fs", data_id, pin, pause)
                time.sleep(pause)
                pause = min(pause * 2, 4.0)
        raise DriverError(f"mutable id {data_id!r}: the grid still shows a version older than {pin}")

    def _write(self, data_id: str, kind: int, payload: bytes) -> None:
        # An id this driver never wrote nor read is most likely new: create its file and
        # link it in one request (PUT to the directory entry with format=SDMF and
        # replace=false), without looking the name up first; if another client linked
        # it already, that is 409 and the write goes through that client's file by
        # compare-and-swap below.
        cap = self.writecaps.get(data_id) if data_id not in self.pins else self._writecap(data_id)
        if cap is None:
            version = self.pins.get(data_id, -1) + 1
            data = pack_record(Record(kind, version, payload))
            try:
                body, tag = self._call_tagged("PUT", self._entry(self.dircaps["mutable"], mutable_name(data_id))
                                              + "?format=SDMF&replace=false", data)
            except Conflict:
                body = b""
            if body:
                new_cap = body.decode("ascii").strip()
                with self._lock:
                    self.writecaps[data_id] = new_cap
                    self._remember(data_id, version, tag)
                    self.pins[data_id] = max(version, self.pins.get(data_id, -1))
                    self._save_locked()
                return
            cap = self._writecap(data_id)  # another client linked one first: write through it
            if cap is None:
                raise DriverError(f"mutable id {data_id!r}: linked by another client but not readable")
        path = f"/uri/{quote(cap, safe='')}"
        # compare-and-swap: write version+1 only over the version known to be current
        # (If-Match its ETag); if another writer moved it meanwhile (412), read again
        # and retry, so two writers never both write the same version number. The
        # version this driver last wrote or read (its ETag, from the node's answer) is
        # tried first without reading it again; a 412 then costs the read it saved.
        known = self.tags.get(data_id)
        for attempt in range(CAS_ATTEMPTS):
            remembered = known is not None
            if known is not None:
                current_version, tag = known
                known = None
            else:
                current, tag = self._read_tagged(path)
                current_version = current.version if current else -1
            # no need to wait for a lagging grid here: pin + 1 supersedes whatever it shows
            version = max(self.pins.get(data_id, -1), current_version) + 1
            headers = {"If-Match": tag} if tag else {}
            try:
                _, new_tag = self._call_tagged("PUT", path, pack_record(Record(kind, version, payload)),
                                               headers=headers)
            except VersionMoved:
                log.info("mutable id %r moved while writing version %d; retrying", data_id, version)
                self._remember(data_id, version, None)
                if not remembered:  # a remembered tag gone stale is retried at once, from a read
                    time.sleep(self.read_pause * (attempt + 1))
                continue
            self._remember(data_id, version, new_tag)
            self._pin(data_id, version)
            return
        raise VersionMoved(f"mutable id {data_id!r}: other writers kept moving it ({CAS_ATTEMPTS} attempts)")

    def _remember(self, data_id: str, version: int, tag: str | None) -> None:
        """Note the ETag of a version of `data_id` just written or read (None: forget)."""
        with self._lock:
            if tag:
                self.tags[data_id] = (version, tag)
            else:
                self.tags.pop(data_id, None)

    def put_mutable(self, data_id: str, data: bytes | str) -> bool:
        self._write(data_id, data_kind(data), as_bytes(data))
        return True

    def get_mutable(self, url: str) -> bytes | str | None:
        parsed = parse_url(url)
        if parsed is None:
            return None
        dircap, name = parsed
        data_id = bytes.fromhex(name[2:]).decode("utf-8")
        own = dircap == self.dircaps.get("mutable-ro") or dircap == self.dircaps.get("mutable")
        cap = self._writecap(data_id) if own else None
        path = f"/uri/{quote(cap, safe='')}" if cap else self._entry(dircap, name)
        seen: list[str | None] = [None]

        def fetch() -> Record | None:
            record, seen[0] = self._read_tagged(path)
            return record

        # pins are per id for our own data, per URL for another driver's
        record = self._fresh(data_id if own else url, fetch)
        if own and cap and record is not None:
            self._remember(data_id, record.version, seen[0])
        if record is None or record.is_tombstone:
            return None
        return record.data()

    def delete_mutable(self, data_id: str, tombstone: str | bytes) -> bool:
        body = as_bytes(tombstone)
        self._store_tombstone("mutable", data_id, {"tombstone": body.decode("utf-8", "replace")})
        if self._writecap(data_id) is not None or data_id in self.pins:
            self._write(data_id, KIND_TOMBSTONE, body)
        return True


def from_config(conf: Mapping[str, Any], **kw: Any) -> ShoalDriver:
    """Build a driver from Blockstack's conf: `conf['path']` names an INI file whose
    [shoal] section has node_url (required) and optional state_file, timeout,
    read_attempts, read_pause; the same keys may also sit directly in `conf`."""
    settings: dict[str, str] = {}
    path = conf.get("path")
    if path:
        parser = configparser.ConfigParser()
        parser.read(path, encoding="utf-8")
        if parser.has_section(SECTION):
            settings.update(parser.items(SECTION))
    settings.update({k: str(v) for k, v in conf.items() if k in (
        "node_url", "state_file", "timeout", "read_attempts", "read_pause")})
    if "node_url" not in settings:
        raise DriverError(f"no node_url in [{SECTION}] of {path!r} nor in the driver conf")
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    state_file = settings.get("state_file") or os.path.join(base, "shoal-blockstack-driver.json")
    return ShoalDriver(settings["node_url"], os.path.expanduser(state_file),
                       timeout=float(settings.get("timeout", 60)),
                       read_attempts=int(settings.get("read_attempts", 12)),
                       read_pause=float(settings.get("read_pause", 0.25)))


def safely(default: Any, what: str, fn: Any, *args: Any) -> Any:
    """Run fn(*args); on any failure log one line and return `default` (drivers never raise)."""
    try:
        return fn(*args)
    except (ShoalError, OSError, ValueError, KeyError, TypeError, RecordError) as e:
        log.warning("shoal blockstack driver: %s failed: %s", what, e)
        return default
    except Exception as e:  # noqa: BLE001 - the driver contract forbids raising
        log.exception("shoal blockstack driver: %s failed unexpectedly: %s", what, e)
        return default
