"""Aliases and `alias:path` arguments, kept as Tahoe-LAFS 1.20 keeps them.

Facts (Tahoe's scripts/common.py, tahoe_add_alias.py, docs/frontends/CLI.rst):
- NODEDIR/private/aliases is UTF-8 text, one ``name: cap`` per line; blank
  lines and lines starting with ``#`` are ignored; the name is everything
  before the first colon and the cap is the rest, stripped.
- NODEDIR/private/root_dir.cap, when present and not empty, is the default
  alias ``tahoe`` (a line in private/aliases wins over it).
- New aliases are appended as ``name: cap`` lines (the file is rewritten
  through a temporary file and renamed into place); names may contain
  neither ``:`` nor spaces, and a trailing ``:`` on the command line is dropped.
- An argument that starts with ``URI:`` (or ``ro.URI:`` / ``imm.URI:``) is a
  cap, optionally followed by ``/path`` (or the old ``:./path``). Otherwise
  the text before the first colon is an alias name, unless it contains a
  ``/`` (``dir/file:7`` is a plain path). Without an alias the default
  ``tahoe:`` is used; commands that also take local files (cp, backup) treat
  such an argument as a local path instead.
"""

from __future__ import annotations

import os

import attrs

from shoal.caps import BadCapError, DirectoryCap, parse_cap
from shoal.cli.errors import UsageError

DEFAULT_ALIAS = "tahoe"
CAP_PREFIXES = ("URI:", "ro.URI:", "imm.URI:")


@attrs.frozen
class Remote:
    """A place in the grid: a cap (normally a directory's) and a path under it."""

    cap: str
    path: str  # "" for the cap itself; no leading slash

    @property
    def name(self) -> str:
        """The last path component ("" when the argument named no child)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1] if self.path.strip("/") else ""


def aliases_path(nodedir: str) -> str:
    return os.path.join(nodedir, "private", "aliases")


def load_aliases(nodedir: str) -> dict[str, str]:
    """Every alias of a node directory, name -> cap text (missing files mean none)."""
    aliases: dict[str, str] = {}
    try:
        with open(os.path.join(nodedir, "private", "root_dir.cap"), encoding="utf-8") as f:
            root = f.read().strip()
        if root:
            aliases[DEFAULT_ALIAS] = root
    except OSError:
        pass
    try:
        with open(aliases_path(nodedir), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return aliases
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, cap = line.partition(":")
        if sep:
            aliases[name] = cap.strip()
    return aliases


def check_alias_name(name: str) -> str:
    """The alias name as given (a trailing colon dropped); UsageError if it cannot be one."""
    if name.endswith(":"):
        name = name[:-1]
    if not name:
        raise UsageError("an alias name cannot be empty")
    if ":" in name:
        raise UsageError(f"alias names cannot contain colons: {name!r}")
    if " " in name:
        raise UsageError(f"alias names cannot contain spaces: {name!r}")
    if "\n" in name or "\r" in name:
        raise UsageError("alias names cannot contain line breaks")
    return name


def directory_cap(text: str, what: str) -> DirectoryCap:
    """Parse a directory cap (any DIR2 kind); UsageError naming `what` otherwise."""
    try:
        cap = parse_cap(text.strip())
    except BadCapError as e:
        raise UsageError(f"{what}: not a valid cap: {e}") from None
    if not isinstance(cap, DirectoryCap):
        raise UsageError(f"{what}: {text.strip()[:40]}... is not a directory cap")
    return cap


def write_private_text(path: str, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600 from the start (caps live there)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_alias(nodedir: str, name: str, cap: str) -> None:
    """Append `name: cap` to private/aliases (atomically); UsageError if the name exists."""
    name = check_alias_name(name)
    if name in load_aliases(nodedir):
        raise UsageError(f"alias {name!r} already exists")
    path = aliases_path(nodedir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += f"{name}: {cap}\n"
    write_private_text(path, text)


def readonly_text(cap_text: str) -> str:
    """The read-only form of a cap's text (as given for unknown or unparseable caps)."""
    try:
        cap = parse_cap(cap_text)
    except BadCapError:
        return cap_text
    readonly = getattr(cap, "readonly", None)
    ro = readonly() if readonly is not None else None
    return ro.to_string() if ro is not None else cap_text


def is_cap(text: str) -> bool:
    return text.startswith(CAP_PREFIXES)


def resolve(aliases: dict[str, str], arg: str, default: str | None = DEFAULT_ALIAS) -> Remote | None:
    """Read an `alias:path` or `CAP[/path]` argument.

    Returns None for a local path (only when `default` is None and the
    argument names no alias or cap); UsageError for an unknown alias.
    """
    text = arg.strip(" ")
    if is_cap(text):
        sep = text.find(":./")
        if sep != -1:
            return Remote(text[:sep], text[sep + 3:])
        cap, _, path = text.partition("/")
        return Remote(cap, path)
    alias, colon, rest = text.partition(":")
    if not colon or "/" in alias:
        if default is None:
            return None
        return Remote(_alias_cap(aliases, default, default_missing=True), text)
    return Remote(_alias_cap(aliases, alias), rest)


def _alias_cap(aliases: dict[str, str], name: str, default_missing: bool = False) -> str:
    if name not in aliases:
        if default_missing:
            raise UsageError(f"no alias given and the default alias {name!r} does not exist; "
                             f"create it with `shoal create-alias {name}`")
        raise UsageError(f"unknown alias {name!r}; create it with `shoal create-alias {name}` or `shoal add-alias`")
    return directory_cap(aliases[name], f"alias {name!r}").to_string()
