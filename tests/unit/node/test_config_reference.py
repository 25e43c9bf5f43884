"""The configuration reference cannot drift from the code.

Three things must agree: the tahoe.cfg reads in src/shoal (found by scanning
the source), the registry shoal.node.config.KEYS, and docs/configuration.md.
A read of a key missing from KEYS fails here (and raises at run time); a key
in KEYS without a row in the document, or a row naming no key, fails here.
"""

import ast
import configparser
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.apps.blobs.service import KNOWN_KEYS as BLOB_KEYS
from shoal.apps.blobs.service import BlobSettings
from shoal.checker.job import KNOWN_KEYS as CHECKER_KEYS
from shoal.checker.job import CheckerSettings
from shoal.immutable.params import DEFAULT_MAX_SEGMENT_SIZE
from shoal.node.config import (
    KEYS,
    ConfigError,
    NodeConfig,
    UnregisteredKeyError,
    load_config,
    parse_duration,
    parse_size,
)
from shoal.node.config_keys import BEGIN, END, MODULE_SECTIONS, OPEN_SECTIONS, render
from shoal.storage.scrubber import MINIMUM_CYCLE_TIME

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "src" / "shoal"
REFERENCE = ROOT / "docs" / "configuration.md"

# NodeConfig's readers; the first two arguments are (section, key).
READERS = {"get", "get_bool", "get_int", "get_size", "get_duration", "get_date", "get_endpoints", "require"}
IMPLEMENTATION = {"src/shoal/node/config.py", "src/shoal/node/config_keys.py"}  # the readers themselves
CONFIG_NAMES = {"config", "cfg"}  # what the code calls a NodeConfig (also self.config)


def _is_config(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id in CONFIG_NAMES) or (
        isinstance(node, ast.Attribute) and node.attr == "config")


class Expr(str):
    """An argument that is not a literal (shown as its source)."""


def _literal(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else Expr(ast.unparse(node))


def config_reads(source: str, filename: str) -> Iterator[tuple[str, int, str, tuple[object, ...]]]:
    """(kind, line, method, arguments) for each tahoe.cfg read in `source`.

    A call is a read when its receiver is named like a config (config, cfg, self.config), or when
    it is one of NodeConfig's readers whose first argument names a tahoe.cfg section. kind is
    "read" for literal (section, key, ...) reads, "whole" for .section(NAME), "opaque" for reads
    whose section or key is not a literal (the scan cannot check those, so they are refused).
    """
    known_sections = {s for s, _ in KEYS} | set(OPEN_SECTIONS)
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver, args = node.func.attr, node.func.value, node.args
        literal_section = (bool(args) and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)
                           and args[0].value in known_sections)
        if method == "section" and (_is_config(receiver) or literal_section):
            yield ("whole" if literal_section else "opaque", node.lineno, method, tuple(map(_literal, args)))
        elif method in READERS and (_is_config(receiver) or (literal_section and len(args) >= 2)):
            literal = len(args) >= 2 and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                             for a in args[:2])
            yield ("read" if literal else "opaque", node.lineno, method, tuple(map(_literal, args)))


def all_reads() -> list[tuple[str, str, int, str, tuple[object, ...]]]:
    out = []
    for path in sorted(SOURCE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in IMPLEMENTATION:
            continue
        for kind, line, method, args in config_reads(path.read_text(encoding="utf-8"), rel):
            out.append((rel, kind, line, method, args))
    return out


def reference_rows() -> tuple[str, set[tuple[str, str]]]:
    """The generated block of docs/configuration.md and the (section, key) of each row in it."""
    text = REFERENCE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{REFERENCE}: the generated block's markers are missing"
    block = text[text.index(BEGIN): text.index(END) + len(END)]
    rows: set[tuple[str, str]] = set()
    section = None
    for line in block.splitlines():
        header = re.match(r"^### \[([^\]]+)\]$", line)
        if header:
            section = header.group(1)
            continue
        row = re.match(r"^\| `([^`\[]+)` \|", line)
        if row and section is not None:
            rows.add((section, row.group(1).lower()))
    return block, rows


def _parsed_default(method: str, text: str) -> object:
    if method == "get_bool":
        return {"true": True, "false": False}[text]
    if method == "get_int":
        return int(text)
    return text


# --- the source against the registry -----------------------------------------------------------

def test_every_config_read_in_the_source_is_registered() -> None:
    reads = all_reads()
    problems = []
    for rel, kind, line, method, args in reads:
        where = f"{rel}:{line}: {method}{args}"
        if kind == "opaque":
            problems.append(f"{where}: name the section and key as string literals so they can be checked")
        elif kind == "whole":
            if args[0] not in MODULE_SECTIONS:
                problems.append(f"{where}: [{args[0]}] is not read whole (MODULE_SECTIONS)")
        else:
            section, key = str(args[0]), str(args[1])
            entry = KEYS.get((section, key.lower()))
            if entry is None:
                problems.append(f"{where}: [{section}]{key} is not in shoal.node.config.KEYS")
            elif not entry.used:
                problems.append(f"{where}: [{section}]{key} is read, but KEYS marks it used=False (ignored)")
            elif method in ("get", "get_bool", "get_int") and len(args) >= 3 and entry.default and isinstance(
                    args[2], (str, int, bool)) and not isinstance(args[2], Expr) and args[2] != "":
                if _parsed_default(method, entry.default) != args[2]:
                    problems.append(f"{where}: default {args[2]!r} differs from KEYS' {entry.default!r}")
    assert not problems, "\n".join(problems)
    # and what the reference says shoal acts on, it reads
    found = {(str(a[0]), str(a[1]).lower()) for _, kind, _, _, a in reads if kind == "read"}
    unread = sorted(k for k, entry in KEYS.items() if entry.used and k[0] not in MODULE_SECTIONS and k not in found)
    assert not unread, f"KEYS says shoal acts on {unread}, but nothing reads them (used=False, or remove them)"
    # the scan itself still finds the node's reads (a pattern that stopped matching would pass anything)
    assert {("client", "shares.needed"), ("storage", "reserved_space"), ("node", "web.port"),
            ("storage", "expire.mode"), ("logging", "level")} <= found
    assert len(found) >= 25


def test_the_scan_refuses_an_unregistered_or_unchecked_read() -> None:
    source = (
        "def f(config, cfg, self, name):\n"
        "    config.get_int('client', 'shares.bogus', 3)\n"
        "    cfg.get('node', name)\n"
        "    self.config.section('storage')\n"
        "    other.get_bool('storage', 'not.a.key', False)\n"
        "    {}.get('storage')\n"  # a dict's get with one argument is no config read
    )
    reads = list(config_reads(source, "<test>"))
    assert [(kind, line) for kind, line, _, _ in reads] == [("read", 2), ("opaque", 3), ("whole", 4), ("read", 5)]
    assert all((str(a[0]), str(a[1])) not in KEYS for kind, _, _, a in reads if kind == "read")


def test_reading_an_unregistered_key_raises(tmp_path: Path) -> None:
    (tmp_path / "tahoe.cfg").write_text("[client]\nshares.needed = 2\n", encoding="utf-8")
    cfg = load_config(str(tmp_path))
    assert cfg.get_int("client", "shares.needed", 3) == 2
    with pytest.raises(UnregisteredKeyError, match=r"\[client\]shares.bogus .*KEYS"):
        cfg.get_int("client", "shares.bogus", 3)
    with pytest.raises(UnregisteredKeyError):
        cfg.get("nosuchsection", "key")
    with pytest.raises(UnregisteredKeyError):
        cfg.section("storage")
    assert cfg.section("checker") == {}


def test_load_config_accepts_every_registered_key_and_refuses_others(tmp_path: Path) -> None:
    parser = configparser.RawConfigParser(interpolation=None)
    for section, key in KEYS:
        if section in MODULE_SECTIONS:
            continue
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, "")
    for section in OPEN_SECTIONS:
        parser.add_section(section)
        parser.set(section, "anything", "x")
    with open(tmp_path / "tahoe.cfg", "w", encoding="utf-8") as f:
        parser.write(f)
    load_config(str(tmp_path))
    (tmp_path / "tahoe.cfg").write_text("[logging]\nlevel = INFO\nlevell = DEBUG\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tahoe.cfg: unknown key \[logging\]levell"):
        load_config(str(tmp_path))


# --- the registry against the modules that validate their own sections --------------------------

def test_checker_section_matches_the_checker_module() -> None:
    registered = {key for section, key in KEYS if section == "checker"}
    assert registered == set(CHECKER_KEYS)
    defaults = {key: KEYS[("checker", key)].default for key in registered if KEYS[("checker", key)].default}
    assert CheckerSettings.parse(defaults) == CheckerSettings()


def test_blobs_section_matches_the_blob_service(tmp_path: Path) -> None:
    registered = {key for section, key in KEYS if section == "blobs"}
    assert registered == set(BLOB_KEYS)
    defaults = {key: KEYS[("blobs", key)].default for key in registered}
    assert BlobSettings.from_section(defaults, str(tmp_path), parse_size) == BlobSettings.from_section(
        {}, str(tmp_path), parse_size)


def test_defaults_named_in_the_registry_are_the_code_s() -> None:
    assert int(KEYS[("client", "shares._max_immutable_segment_size_for_testing")].default) == DEFAULT_MAX_SEGMENT_SIZE
    assert parse_duration(KEYS[("storage", "scrub.interval")].default) == MINIMUM_CYCLE_TIME
    for key in KEYS.values():
        if key.type == "size" and key.default:
            parse_size(key.default)
        if key.type == "boolean" and key.default:
            assert key.default in ("true", "false"), key


# --- the registry against the document -----------------------------------------------------------

def test_every_registered_key_has_a_row_in_the_reference() -> None:
    _, rows = reference_rows()
    missing = sorted(set(KEYS) - rows)
    assert not missing, f"{REFERENCE} has no row for {missing}: run `make config-doc`"


def test_the_reference_names_no_key_that_is_not_registered() -> None:
    _, rows = reference_rows()
    extra = sorted(rows - set(KEYS))
    assert not extra, f"{REFERENCE} names keys shoal does not know: {extra}: run `make config-doc`"


def test_the_reference_block_is_what_the_registry_renders() -> None:
    block, _ = reference_rows()
    assert block == render(), f"{REFERENCE} is stale: run `make config-doc`"


def test_config_file_name_is_the_one_documented() -> None:
    assert "tahoe.cfg" in REFERENCE.read_text(encoding="utf-8")
    assert os.path.basename(NodeConfig("/x", configparser.RawConfigParser()).path) == "tahoe.cfg"
