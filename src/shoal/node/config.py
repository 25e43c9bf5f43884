"""tahoe.cfg as Tahoe-LAFS 1.20 reads it, frozen and validated.

INI via configparser; sections [node], [client], [storage] (and the others
Tahoe knows); unknown sections or keys are errors naming the file and key,
as in Tahoe. Every key is registered in `KEYS` (shoal.node.config_keys, which
docs/configuration.md is rendered from); shoal adds `[storage] max_space` and
`scrub.interval`, `[logging]`, and `[checker]` and `[blobs]` (checked by their
own modules). Sizes use Tahoe's
abbreviations (1G = 10**9, 1GiB = 2**30), durations its units
(s/second/seconds, day/days, mo/month/months, year/years; a month is 31
days), cutoff dates YYYY-MM-DD (UTC midnight).
"""

import calendar
import configparser
import os
import re

import attrs

from shoal.errors import Fault, ShoalError
from shoal.node.config_keys import (
    KEYS,
    MODULE_SECTIONS,
    OPEN_PREFIXES,
    OPEN_SECTIONS,
    Key,
    UnregisteredKeyError,
    lookup,
    sections,
)
from shoal.protocol.body_rate import DEFAULT_MIN_RATE, BodyRatePolicy
from shoal.protocol.hints import AUTO, HintError, parse_furl_hints, parse_location

__all__ = ["KEYS", "ConfigError", "Key", "NodeConfig", "UnregisteredKeyError", "load_config"]

CONFIG_FILE = "tahoe.cfg"


class ConfigError(ShoalError):
    """A node directory or tahoe.cfg that cannot be used; the message names file and key."""

    fault = Fault.CALLER


# Every key a tahoe.cfg may hold, per checked section (from the registry).
_VALID: dict[str, frozenset[str]] = {
    section: frozenset(key for s, key in KEYS if s == section) for section in sections() - MODULE_SECTIONS
}
# Sections whose keys are not checked here: Tahoe's open-ended ones, and shoal's own that their
# modules validate as a whole ([checker], [blobs]; their keys are registered all the same).
_OPEN_SECTIONS = frozenset(OPEN_SECTIONS) | MODULE_SECTIONS
_OPEN_PREFIXES = OPEN_PREFIXES

_SIZE = re.compile(r"^(\d+)([KMGTPE]?I?B?)$")
_SIZE_MULT = {"": 1, "I": 1}
for _i, _p in enumerate("KMGTPE", start=1):
    _SIZE_MULT[_p] = 1000**_i
    _SIZE_MULT[_p + "I"] = 1024**_i
_DURATION = re.compile(r"^\s*(\d+)\s*(s|seconds?|days?|mo|months?|years?)\s*$", re.IGNORECASE)
_DAY = 24 * 3600
_DURATION_MULT = {"s": 1, "second": 1, "seconds": 1, "day": _DAY, "days": _DAY, "mo": 31 * _DAY,
                  "month": 31 * _DAY, "months": 31 * _DAY, "year": 365 * _DAY, "years": 365 * _DAY}
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_size(text: str) -> int:
    """Tahoe's abbreviated sizes: 100, 5K (10**3), 5KiB (2**10), 1G, 1GB, 2TiB ..."""
    m = _SIZE.match(text.strip().upper())
    if not m:
        raise ValueError(f"unparseable size {text!r}")
    number, suffix = m.groups()
    return int(number) * _SIZE_MULT[suffix.removesuffix("B")]


def parse_duration(text: str) -> int:
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"unparseable duration {text!r} (e.g. '60 days', '3 months')")
    return int(m.group(1)) * _DURATION_MULT[m.group(2).lower()]


def parse_date(text: str) -> int:
    """YYYY-MM-DD -> seconds since the epoch at UTC midnight."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if not m:
        raise ValueError(f"unparseable date {text!r} (want YYYY-MM-DD)")
    y, mo, d = map(int, m.groups())
    return calendar.timegm((y, mo, d, 0, 0, 0, 0, 1, 0))


@attrs.frozen
class NodeConfig:
    """A parsed tahoe.cfg plus the node directory it came from."""

    basedir: str
    _parser: configparser.RawConfigParser = attrs.field(eq=False, repr=False)

    @property
    def path(self) -> str:
        return os.path.join(self.basedir, CONFIG_FILE)

    def _where(self, section: str, key: str) -> str:
        return f"{self.path}: [{section}]{key}"

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        """The raw text of a registered key, or `default` when absent (every typed reader comes here,
        so reading a key missing from KEYS raises UnregisteredKeyError)."""
        lookup(section, key)
        try:
            return self._parser.get(section, key)
        except (configparser.NoSectionError, configparser.NoOptionError):
            return default

    def section(self, section: str) -> dict[str, str]:
        """Every key of a section as raw text ({} when the section is absent); only for a section
        whose keys are registered and that its own module validates ([checker], [blobs])."""
        if section not in MODULE_SECTIONS:
            raise UnregisteredKeyError(f"[{section}] is not a section read whole (MODULE_SECTIONS)")
        if not self._parser.has_section(section):
            return {}
        return dict(self._parser.items(section))

    def require(self, section: str, key: str) -> str:
        value = self.get(section, key)
        if value is None:
            raise ConfigError(f"{self._where(section, key)} is missing")
        return value

    def get_bool(self, section: str, key: str, default: bool) -> bool:
        value = self.get(section, key)
        if value is None or value.strip() == "":
            return default
        try:
            return _BOOLS[value.strip().lower()]
        except KeyError:
            raise ConfigError(f"{self._where(section, key)}: {value!r} is not a boolean") from None

    def get_int(self, section: str, key: str, default: int) -> int:
        value = self.get(section, key)
        if value is None or value.strip() == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{self._where(section, key)}: {value!r} is not an integer") from None

    def get_size(self, section: str, key: str) -> int | None:
        value = self.get(section, key)
        if value is None or value.strip() == "":
            return None
        try:
            return parse_size(value)
        except ValueError as e:
            raise ConfigError(f"{self._where(section, key)}: {e}") from None

    def get_duration(self, section: str, key: str) -> int | None:
        value = self.get(section, key)
        if value is None or value.strip() == "":
            return None
        try:
            return parse_duration(value)
        except ValueError as e:
            raise ConfigError(f"{self._where(section, key)}: {e}") from None

    def get_date(self, section: str, key: str) -> int | None:
        value = self.get(section, key)
        if value is None or value.strip() == "":
            return None
        try:
            return parse_date(value)
        except ValueError as e:
            raise ConfigError(f"{self._where(section, key)}: {e}") from None

    def get_endpoints(self, section: str, key: str) -> list[str]:
        """A listening endpoint (or a comma-separated list, as tub.port takes),
        each parsed now so a bad one fails at start naming its key; [] when
        unset, empty, 'none' or 'disabled' (the caller decides what those mean)."""
        value = (self.get(section, key) or "").strip()
        if value.lower() in ("", "none", "disabled"):
            return []
        endpoints = [part.strip() for part in value.split(",") if part.strip()]
        # a bare port ("0", "3456:interface=127.0.0.1") means tcp:..., as Tahoe 1.20 reads web.port
        endpoints = [f"tcp:{e}" if e[:1].isdigit() else e for e in endpoints]
        for endpoint in endpoints:
            check_endpoint(endpoint, self._where(section, key))
        return endpoints

    def tub_location(self) -> str:
        """[node]tub.location checked hint by hint, with Tahoe's AUTO replaced by this host's
        addresses at the (fixed) tcp port of tub.port; ConfigError naming the key otherwise."""
        text = (self.get("node", "tub.location") or "").strip()
        where = self._where("node", "tub.location")
        try:
            hints = parse_location(text)
        except HintError as e:
            raise ConfigError(f"{where}: {e}") from None
        if AUTO not in hints:
            return ",".join(hints)
        ports = self.get_endpoints("node", "tub.port")
        m = re.fullmatch(r"tcp:(\d+)(:.*)?", ports[0]) if ports else None
        if m is None or int(m.group(1)) == 0:
            raise ConfigError(f"{where}: AUTO needs a fixed tcp:PORT in [node]tub.port")
        expanded: list[str] = []
        for hint in hints:
            for h in ([f"tcp:{a}:{m.group(1)}" for a in local_addresses()] if hint == AUTO else [hint]):
                if h not in expanded:
                    expanded.append(h)
        return ",".join(expanded)

    # --- paths ---------------------------------------------------------
    def private_path(self, name: str) -> str:
        return os.path.join(self.basedir, "private", name)

    def node_path(self, name: str) -> str:
        return os.path.join(self.basedir, name)


def check_endpoint(endpoint: str, where: str) -> None:
    """Parse a Twisted server endpoint string (without listening), or ConfigError at `where`."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, endpoint)
    except Exception as e:  # ValueError, KeyError, TypeError, OSError (a missing TLS key file)
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{where}: {endpoint!r} is not a listening endpoint: {reason}") from None


def local_addresses() -> list[str]:
    """This host's IPv4 addresses for Tahoe's AUTO: loopback, then those its name resolves to,
    then the source address of a route to a public host (no packet is sent)."""
    import socket

    found = ["127.0.0.1"]
    try:
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("198.41.0.4", 7))  # A.ROOT-SERVERS.NET, as Foolscap's get_local_ip_for
            found.append(s.getsockname()[0])
    except OSError:
        pass
    return list(dict.fromkeys(a for a in found if not a.startswith("0.")))


def check_hints(cfg: NodeConfig) -> None:
    """Every connection-hint key: tub.location (unless disabled) and the FURL keys."""
    location = (cfg.get("node", "tub.location") or "").strip()
    if location and location != "disabled":
        try:
            parse_location(location)
        except HintError as e:
            raise ConfigError(f"{cfg.path}: [node]tub.location: {e}") from None
    for section, key in (("client", "introducer.furl"), ("client", "helper.furl")):
        furl = (cfg.get(section, key) or "").strip()
        if not furl:
            continue
        try:
            parse_furl_hints(furl)
        except HintError as e:
            raise ConfigError(f"{cfg.path}: [{section}]{key}: {e}") from None


def body_rate(cfg: NodeConfig, min_rate: int | None, window: int) -> BodyRatePolicy:
    """The minimum request-body rate of a port from its two keys (rate None: the default)."""
    if window < 1:
        raise ConfigError(f"{cfg.path}: a body_rate_window must be at least 1 second, not {window}")
    return BodyRatePolicy(min_rate=DEFAULT_MIN_RATE if min_rate is None else min_rate, window=window)


def load_config(basedir: str) -> NodeConfig:
    """Read and validate BASEDIR/tahoe.cfg; ConfigError on anything wrong."""
    basedir = os.path.abspath(os.path.expanduser(basedir))
    if not os.path.isdir(basedir):
        raise ConfigError(f"{basedir}: no such node directory")
    path = os.path.join(basedir, CONFIG_FILE)
    parser = configparser.RawConfigParser(strict=True, interpolation=None)
    try:
        with open(path, encoding="utf-8-sig") as f:
            parser.read_file(f, source=path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (is {basedir} a node directory?)") from None
    except (configparser.Error, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse: {first}") from None
    for section in parser.sections():
        if section in _OPEN_SECTIONS or section.startswith(_OPEN_PREFIXES):
            continue
        if section not in _VALID:
            raise ConfigError(f"{path}: unknown section [{section}]")
        for key in parser.options(section):
            if key.lower() not in _VALID[section]:
                raise ConfigError(f"{path}: unknown key [{section}]{key}")
    cfg = NodeConfig(basedir, parser)
    for section, key in (("node", "tub.port"), ("node", "tub.location"), ("client", "introducer.furl")):
        value = cfg.get(section, key)
        if value is not None and key.endswith(".furl") and "#" in value:
            raise ConfigError(f"{path}: [{section}]{key} contains an unescaped '#'")
    check_hints(cfg)
    return cfg
