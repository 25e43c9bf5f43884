"""`shoal cp`: copy files and trees between the local disk and the grid (and
within either), with Tahoe-LAFS 1.20's rules (docs/frontends/CLI.rst):

- An argument with an alias or a cap (``work:x``, ``URI:DIR2:.../x``) is in
  the grid; anything else is a local path.
- Directories need -r. A source directory with a name (``~/photos``,
  ``work:photos``) is copied as a whole, under its name, into the target
  directory (made when missing: ``cp -r ~/photos work:new`` gives
  work:new/photos); one without a name (a bare dircap, ``work:``) has its
  contents copied. A missing target for a single file becomes that file;
  several sources need a target directory. A target ending in ``/`` is
  always a directory (Tahoe refuses it for a single file; shoal makes it).

Web API: files go up with PUT /uri (immutable, streamed) and are linked in
one POST $DIRCAP?t=set_children per directory; new grid directories are made
bottom-up with POST /uri?t=mkdir-with-children, so a whole tree costs one
mutable write per directory. Immutable grid files are linked by cap, never
copied; mutable ones are copied into new immutable files. Downloads stream to
a temporary file renamed into place; with --caps-only a grid file copied to a
local file is written as its read cap instead (Tahoe's option, for comparing trees).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import attrs

from shoal.caps import BadCapError, CHKCap, LiteralCap, parse_cap
from shoal.cli.aliases import readonly_text, resolve
from shoal.cli.context import Context, command
from shoal.cli.errors import CLIError, UsageError
from shoal.cli.progress import Transfer
from shoal.cli.webclient import WebClient, cap_url
from shoal.formats.dirnode import child_name_problem

IMMUTABLE_FILE_PREFIXES = ("URI:CHK:", "URI:LIT:")


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "cp", "copy files or directories to, from or within the grid", """\
  shoal cp notes.txt work:                   # -> work:notes.txt
  shoal cp a.txt b.txt work:docs/            # several files into a directory
  shoal cp -r ~/photos work:                 # -> work:photos/...
  shoal cp -r work:photos ./restore          # -> ./restore/photos/... (made if missing)
  shoal cp URI:CHK:... ./file.bin            # a bare file cap to a local file""", cmd_cp)
    p.add_argument("paths", nargs="+", metavar="FROM.. TO")
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories and everything under them")
    p.add_argument("-v", "--verbose", action="store_true", help="name each file as it is copied")
    p.add_argument("--caps-only", action="store_true",
                   help="when copying grid files to local files, write each file's read cap instead of its "
                        "contents (as tahoe cp: for debugging and comparing trees)")


# --- sources -------------------------------------------------------------------------

@attrs.frozen
class LocalFile:
    path: str
    name: str | None


@attrs.frozen
class LocalDir:
    path: str
    name: str | None


@attrs.frozen
class RemoteFile:
    info: dict[str, Any] = attrs.field(eq=False)
    name: str | None

    @property
    def cap(self) -> str:
        return str(self.info.get("rw_uri") or self.info["ro_uri"])

    @property
    def mutable(self) -> bool:
        return bool(self.info.get("mutable"))

    @property
    def size(self) -> int | None:
        size = self.info.get("size")
        if isinstance(size, int):
            return size
        try:
            cap = parse_cap(self.cap)
        except BadCapError:
            return None
        return cap.size if isinstance(cap, CHKCap) else len(cap.data) if isinstance(cap, LiteralCap) else None


@attrs.frozen
class RemoteDir:
    children: dict[str, Any] = attrs.field(eq=False)
    name: str | None


Source = LocalFile | LocalDir | RemoteFile | RemoteDir


def source(ctx: Context, arg: str) -> Source:
    where = resolve(ctx.aliases, arg, default=None)
    if where is None:
        path = os.path.abspath(arg)
        name = os.path.basename(path.rstrip(os.sep)) or None
        if os.path.isdir(path):
            return LocalDir(path, name)
        if os.path.isfile(path):
            return LocalFile(path, name)
        raise CLIError(f"no such file or directory: {arg}")
    if not where.path and where.cap.startswith(IMMUTABLE_FILE_PREFIXES):
        return RemoteFile({"ro_uri": where.cap, "mutable": False}, None)  # no need to ask the node
    found = ctx.client.describe(where.cap, where.path)
    if found is None:
        raise CLIError(f"no such file or directory in the grid: {arg}")
    kind, info = found
    if kind == "dirnode":
        return RemoteDir(info.get("children", {}), where.name or None)
    if kind == "filenode":
        return RemoteFile(info, where.name or None)
    raise CLIError(f"{arg} is an object this node does not understand ({kind})")


# --- targets -------------------------------------------------------------------------

def link_entry(cap: str, kind: str = "filenode") -> list[Any]:
    """A set_children / mkdir-with-children entry: rw_uri for write caps, ro_uri always."""
    ro = readonly_text(cap)
    info: dict[str, Any] = {"ro_uri": ro}
    if ro != cap:
        info["rw_uri"] = cap
    return [kind, info]


@attrs.define
class Copier:
    client: WebClient
    progress: Callable[[int], None]
    say: Callable[[str], None]
    warn: Callable[[str], None]
    files: int = 0
    dirs: int = 0
    refused: list[str] = attrs.field(factory=list)
    caps_only: bool = False

    def refuse(self, label: str, problem: str) -> None:
        """A grid name that cannot be a local path component: said now, failed at the end."""
        self.refused.append(label)
        self.warn(f"skipping {label}: {problem}")

    def file_cap(self, src: LocalFile | RemoteFile) -> str:
        """A cap for the contents of `src` in the grid (uploading when needed)."""
        if isinstance(src, RemoteFile) and not src.mutable:
            return src.cap
        if isinstance(src, RemoteFile):
            resp = self.client.request("GET", cap_url(src.cap))
            return self.client.request("PUT", "uri", body=self._counted(resp.chunks()), length=resp.length).text()
        with open(src.path, "rb") as f:
            return self.client.request("PUT", "uri", body=f, length=os.fstat(f.fileno()).st_size,
                                       progress=self.progress).text()

    def _counted(self, chunks: Any) -> Any:
        for chunk in chunks:
            self.progress(len(chunk))
            yield chunk

    def to_local_file(self, src: LocalFile | RemoteFile, dest: str) -> None:
        self.say(dest)
        self.files += 1
        if isinstance(src, LocalFile):
            shutil.copyfile(src.path, dest)
            self.progress(os.path.getsize(dest))
            return
        if self.caps_only:  # Tahoe's TahoeFileSource.open(caps_only): the read cap, no newline
            with open(dest, "wb") as f:
                f.write(str(src.info.get("ro_uri") or src.cap).encode("ascii"))
            return
        self.client.request("GET", cap_url(src.cap)).save(dest, self.progress)


@attrs.define
class LocalTarget:
    """A local directory receiving files and subdirectories."""

    path: str

    def _child(self, cp: Copier, name: str) -> str | None:
        """The local path of `name` in this directory; None (refused) unless it is one
        path component, so a grid directory can never lead a copy outside its target."""
        problem = local_name_problem(name)
        if problem is not None:
            cp.refuse(f"{name!r} in {self.path}", problem)
            return None
        return os.path.join(self.path, name)

    def add_file(self, cp: Copier, name: str, src: LocalFile | RemoteFile) -> None:
        path = self._child(cp, name)
        if path is not None:
            cp.to_local_file(src, path)

    def subdir(self, cp: Copier, name: str) -> LocalTarget | None:
        path = self._child(cp, name)
        if path is None:
            return None
        if os.path.exists(path) and not os.path.isdir(path):
            raise CLIError(f"{path} exists and is not a directory")
        if not os.path.isdir(path):
            os.mkdir(path)
            cp.dirs += 1
        return LocalTarget(path)

    def finish(self, cp: Copier) -> str | None:
        return None


@attrs.define
class RemoteTarget:
    """A grid directory receiving entries: an existing one (dircap set) or a new one."""

    dircap: str | None
    existing: dict[str, Any] = attrs.field(factory=dict)
    label: str = ""
    pending: dict[str, Any] = attrs.field(factory=dict)
    subdirs: list[tuple[str, RemoteTarget]] = attrs.field(factory=list)

    def add_file(self, cp: Copier, name: str, src: LocalFile | RemoteFile) -> None:
        cp.say(f"{self.label}{name}")
        cp.files += 1
        self.pending[name] = link_entry(cp.file_cap(src))

    def subdir(self, cp: Copier, name: str) -> RemoteTarget:
        kind, info = self.existing.get(name, (None, {}))
        if kind == "dirnode" and info.get("rw_uri"):
            cap = str(info["rw_uri"])
            children = cp.client.get_json(cap_url(cap))[1].get("children", {})
            sub = RemoteTarget(cap, children, f"{self.label}{name}/")
        elif kind is not None and kind != "dirnode":
            raise CLIError(f"{self.label}{name} exists in the grid and is not a directory")
        elif kind == "dirnode":
            raise CLIError(f"{self.label}{name} is a read-only directory")
        else:
            sub = RemoteTarget(None, {}, f"{self.label}{name}/")
        self.subdirs.append((name, sub))
        return sub

    def finish(self, cp: Copier) -> str | None:
        """Write this directory (children first); its cap when newly made."""
        for name, sub in self.subdirs:
            cap = sub.finish(cp)
            if cap is not None:
                self.pending[name] = link_entry(cap, "dirnode")
        body = json_bytes(self.pending)
        if self.dircap is None:
            cp.dirs += 1
            return cp.client.post_text("uri", {"t": "mkdir-with-children"}, body)
        if self.pending:
            cp.client.request("POST", cap_url(self.dircap), {"t": "set_children"}, body=body)
        return None


def local_name_problem(name: str) -> str | None:
    """Why a grid child name cannot become a local file name here (None if it can)."""
    problem = child_name_problem(name)
    if problem is None and os.altsep and os.altsep in name:
        problem = f"{name!r} holds a {os.altsep!r}"
    return problem


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


Target = LocalTarget | RemoteTarget


def copy_tree(cp: Copier, src: Source, target: Target, name: str | None) -> None:
    """Copy `src` into `target` (under `name`; contents directly when name is None)."""
    if isinstance(src, LocalFile | RemoteFile):
        assert name is not None
        target.add_file(cp, name, src)
        return
    into = target.subdir(cp, name) if name is not None else target
    if into is None:
        return
    if isinstance(src, LocalDir):
        for entry in sorted(os.listdir(src.path)):
            path = os.path.join(src.path, entry)
            if os.path.isdir(path):
                copy_tree(cp, LocalDir(path, entry), into, entry)
            elif os.path.isfile(path):
                copy_tree(cp, LocalFile(path, entry), into, entry)
            else:
                cp.say(f"skipping {path}: not a regular file or directory")
        return
    for entry, (kind, info) in sorted(src.children.items()):
        if kind == "dirnode":
            cap = info.get("rw_uri") or info.get("ro_uri")
            children = cp.client.get_json(cap_url(str(cap)))[1].get("children", {})
            copy_tree(cp, RemoteDir(children, entry), into, entry)
        elif kind == "filenode":
            copy_tree(cp, RemoteFile(info, entry), into, entry)
        else:
            cp.say(f"skipping {entry}: an object of unknown kind")


# --- the command ---------------------------------------------------------------------

def open_target(ctx: Context, arg: str, make_dir: bool) -> tuple[Target | None, Any]:
    """(directory target, None) when `arg` is or must become a directory; else (None, file place)."""
    where = resolve(ctx.aliases, arg, default=None)
    if where is None:
        path = os.path.abspath(arg)
        if os.path.isdir(path):
            return LocalTarget(path), None
        if make_dir or arg.endswith(("/", os.sep)):
            if os.path.exists(path):
                raise CLIError(f"{arg} exists and is not a directory")
            os.makedirs(path)
            return LocalTarget(path), None
        return None, path
    found = ctx.client.describe(where.cap, where.path)
    if found is not None and found[0] == "dirnode":
        info = found[1]
        if not info.get("rw_uri"):
            raise CLIError(f"{arg} is a read-only directory")
        return RemoteTarget(str(info["rw_uri"]), info.get("children", {})), None
    if found is not None and (make_dir or arg.endswith("/") or not where.path.strip("/")):
        raise CLIError(f"{arg} exists in the grid and is not a directory")
    if make_dir or arg.endswith("/"):
        cap = ctx.client.post_text(cap_url(where.cap, where.path.strip("/")), {"t": "mkdir"})
        return RemoteTarget(cap, {}), None
    return None, (where, found)


def cmd_cp(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.paths) < 2:
        raise UsageError("cp needs at least one source and a target")
    *srcs, dest = args.paths
    sources = [source(ctx, s) for s in srcs]
    for arg, s in zip(srcs, sources, strict=True):
        if isinstance(s, LocalDir | RemoteDir) and not args.recursive:
            raise UsageError(f"{arg} is a directory: use -r to copy it")
    single = len(sources) == 1
    first = sources[0]
    size = None if not single else first.size if isinstance(first, RemoteFile) else (
        os.path.getsize(first.path) if isinstance(first, LocalFile) else None)
    with Transfer("cp", size) as progress:
        cp = Copier(ctx.client, progress, ctx.err if args.verbose else (lambda _: None), ctx.err,
                    caps_only=args.caps_only)
        # only a single file may go to a file name; anything else goes into a directory
        dir_target, place = open_target(ctx, dest, make_dir=not (single and isinstance(first, LocalFile | RemoteFile)))
        if dir_target is None:
            copy_to_place(cp, first, place, dest)
        else:
            for arg, s in zip(srcs, sources, strict=True):
                if isinstance(s, LocalFile | RemoteFile) and s.name is None:
                    raise UsageError(f"{arg} has no name to use inside {dest}: give a target file name")
                copy_tree(cp, s, dir_target, s.name)
            dir_target.finish(cp)
    if args.verbose:
        ctx.err(f"copied {cp.files} files, made {cp.dirs} directories")
    if cp.refused:
        raise CLIError(f"{len(cp.refused)} grid name(s) not copied: not a single local path component")
    return 0


def copy_to_place(cp: Copier, src: Source, place: Any, dest: str) -> None:
    """A single file copied to a file name (missing, or an existing file to replace)."""
    if not isinstance(src, LocalFile | RemoteFile):
        raise CLIError(f"cannot copy a directory onto the file {dest}")
    if isinstance(place, str):  # a local path
        cp.to_local_file(src, place)
        return
    where, found = place
    cp.say(dest)
    cp.files += 1
    if found is not None and found[1].get("mutable") and found[1].get("rw_uri") and isinstance(src, LocalFile):
        with open(src.path, "rb") as f:  # a mutable file is overwritten in place
            cp.client.request("PUT", cap_url(str(found[1]["rw_uri"])), body=f,
                              length=os.fstat(f.fileno()).st_size, progress=cp.progress)
        return
    cap = cp.file_cap(src)
    cp.client.request("PUT", cap_url(where.cap, where.path), {"t": "uri", "replace": "only-files"},
                      body=cap.encode("ascii"))
