"""The node files of Tahoe-LAFS 1.20 about introduction, read and written as Tahoe does.

private/introducers.yaml   {"introducers": {petname: {"furl": FURL}}}; no file: no introducers
private/servers.yaml       {"storage": {server_id: {"ann": {...}, "connections": {...}}}}
private/introducer_<petname>_cache.yaml
                           a YAML list of {"ann": announcement dict, "key_s": "v0-..."},
                           one per storage announcement received from that introducer
announcement-seqnum        the last seqnum published, "N\\n" (the node directory, not private/)

Each announcement published takes the next seqnum and a fresh nonce (base32 of
32 random bytes); only the seqnum is stored.
"""

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import attr
import yaml

from shoal.encoding.base32 import b2a
from shoal.errors import Fault, ShoalError

SEQNUM_FILE = "announcement-seqnum"
_KEY_S = re.compile(r"\Av0-[a-z2-7]{52}\Z")


class IntroducerConfigError(ShoalError):
    """A malformed introducers.yaml, servers.yaml or seqnum file (the operator's to fix)."""

    fault = Fault.CALLER


def cache_filename(petname: str) -> str:
    """Name (inside private/) of the announcement cache for one introducer."""
    return f"introducer_{petname}_cache.yaml"


def _yaml_reason(error: "yaml.YAMLError") -> str:
    """One line: where in the file and what (PyYAML's own text spans several lines)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return " ".join(str(error).split())


def _load_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise IntroducerConfigError(f"{path}: not valid YAML: {_yaml_reason(e)}") from None


# -- introducers.yaml --


def parse_introducers_yaml(data: Any, where: str = "introducers.yaml") -> dict[str, str]:
    """petname -> FURL from the loaded YAML document."""
    if data is None:
        raise IntroducerConfigError(f"{where}: empty file (write 'introducers: {{}}' for none)")
    if not isinstance(data, dict):
        raise IntroducerConfigError(f"{where}: expected a mapping with an 'introducers' key")
    section = data.get("introducers")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise IntroducerConfigError(f"{where}: 'introducers' must map petnames to {{furl: ...}}")
    result: dict[str, str] = {}
    for petname, entry in section.items():
        if not isinstance(petname, str):
            raise IntroducerConfigError(f"{where}: introducer petname {petname!r} should be text")
        if not isinstance(entry, dict) or "furl" not in entry:
            raise IntroducerConfigError(f"{where}: introducer {petname!r} needs a 'furl' entry")
        furl = entry["furl"]
        if not isinstance(furl, str) or not furl.startswith("pb://"):
            raise IntroducerConfigError(f"{where}: introducer {petname!r}: furl {furl!r} is not a pb:// FURL")
        result[petname] = furl
    return result


def load_introducers_yaml(path: str) -> dict[str, str]:
    """private/introducers.yaml as petname -> FURL; a missing file means no introducers."""
    try:
        data = _load_yaml(path)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise IntroducerConfigError(f"{path}: cannot read: {e.strerror}") from None
    return parse_introducers_yaml(data, path)


# -- servers.yaml --


@attr.s(frozen=True, auto_attribs=True)
class StaticServer:
    """One private/servers.yaml entry: an announcement used in lieu of the introducer's."""

    server_id: bytes
    ann: dict[str, Any]
    connections: dict[str, str] = attr.Factory(dict)


def parse_servers_yaml(data: Any, where: str = "servers.yaml") -> dict[bytes, StaticServer]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise IntroducerConfigError(f"{where}: expected a mapping with a 'storage' key")
    section = data.get("storage")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise IntroducerConfigError(f"{where}: 'storage' must map server ids to {{ann: ...}}")
    result: dict[bytes, StaticServer] = {}
    for server_id, entry in section.items():
        if not isinstance(server_id, str) or not server_id:
            raise IntroducerConfigError(f"{where}: server id {server_id!r} should be text (like v0-...)")
        if not isinstance(entry, dict) or not isinstance(entry.get("ann"), dict):
            raise IntroducerConfigError(f"{where}: server {server_id}: needs an 'ann' mapping")
        ann = {str(k): v for k, v in entry["ann"].items()}
        furl = ann.get("anonymous-storage-FURL")
        if not isinstance(furl, str) or not furl.startswith("pb://"):
            raise IntroducerConfigError(f"{where}: server {server_id}: ann needs a pb:// 'anonymous-storage-FURL'")
        seed = ann.get("permutation-seed-base32")
        if seed is not None and not isinstance(seed, str):
            raise IntroducerConfigError(f"{where}: server {server_id}: 'permutation-seed-base32' should be text")
        connections = entry.get("connections") or {}
        if not isinstance(connections, dict):
            raise IntroducerConfigError(f"{where}: server {server_id}: 'connections' must be a mapping")
        ann.setdefault("service-name", "storage")
        sid = server_id.encode("utf-8")
        result[sid] = StaticServer(sid, ann, {str(k): str(v) for k, v in connections.items()})
    return result


def load_servers_yaml(path: str) -> dict[bytes, StaticServer]:
    """private/servers.yaml as server id -> StaticServer; a missing file means none."""
    try:
        data = _load_yaml(path)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise IntroducerConfigError(f"{path}: cannot read: {e.strerror}") from None
    return parse_servers_yaml(data, path)


# -- the announcement cache --


def parse_cache(data: Any) -> list[tuple[bytes, dict[str, Any]]]:
    """(key_s, ann) pairs from a loaded cache document; malformed entries are skipped."""
    if not isinstance(data, list):
        return []
    entries = []
    for item in data:
        if not isinstance(item, dict):
            continue
        key_s, ann = item.get("key_s"), item.get("ann")
        if not (isinstance(key_s, str) and _KEY_S.match(key_s)):
            continue
        if not (isinstance(ann, dict) and isinstance(ann.get("service-name"), str)):
            continue
        entries.append((key_s.encode("ascii"), ann))
    return entries


def format_cache(entries: Sequence[tuple[bytes, Mapping[str, Any]]]) -> bytes:
    """The cache file's bytes: yaml.safe_dump of [{"ann": ..., "key_s": ...}], as Tahoe writes it."""
    doc = [{"ann": dict(ann), "key_s": key_s.decode("ascii")} for key_s, ann in entries]
    return yaml.safe_dump(doc).encode("utf-8")


def read_cache(path: str) -> list[tuple[bytes, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    return parse_cache(data)


def write_atomically(path: str, data: bytes) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- seqnum --


class FileSequencer:
    """Hands out (seqnum, nonce) for each publication, keeping the seqnum in a file.

    Shared by all of a node's introducer clients, as in Tahoe: every publish
    to any introducer takes the next number.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def current(self) -> int:
        try:
            with open(self.path, encoding="ascii") as f:
                text = f.read().strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as e:
            raise IntroducerConfigError(f"{self.path}: cannot read the announcement seqnum: {e}") from None
        if not text:
            return 0
        try:
            return int(text)
        except ValueError:
            raise IntroducerConfigError(f"{self.path}: announcement seqnum {text[:20]!r} is not a number") from None

    def __call__(self) -> tuple[int, str]:
        seqnum = self.current() + 1
        write_atomically(self.path, f"{seqnum}\n".encode("ascii"))
        return seqnum, b2a(os.urandom(32))
