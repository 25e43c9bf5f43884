"""`shoal backup`: a versioned snapshot of a local directory in the grid.

Layout (Tahoe-LAFS 1.20 tahoe_backup.py, CLI.rst): every run adds
TO/Archives/<YYYY-MM-DD_HH:MM:SSZ> (UTC), an immutable directory tree
(POST /uri?t=mkdir-immutable, children with their local stat metadata as
Tahoe records it), and points TO/Latest at it (PUT ...?t=uri). Files are
uploaded with PUT /uri. What was stored before is remembered in Tahoe's own
NODEDIR/private/backupdb.sqlite (shoal.cli.backupdb): an unchanged file (same
size, mtime and ctime) reuses its cap and a directory whose children are all
the same reuses its immutable directory, so switching between `tahoe backup`
and `shoal backup` sends nothing twice. Entries older than a month are
checked first (t=check), as Tahoe does. A cap remembered in shoal's older
private/shoal-backup-cache.json is still reused (and moved into the backupdb).
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import time
from typing import Any

import attrs

from shoal.cli.aliases import resolve
from shoal.cli.backupdb import FILENAME, BackupDB, FileStat, Known
from shoal.cli.context import Context, command
from shoal.cli.errors import CLIError, UsageError
from shoal.cli.progress import Transfer
from shoal.cli.webclient import WebClient, cap_url

VCS_PATTERNS = ("CVS", "RCS", "SCCS", ".git", ".gitignore", ".cvsignore", ".svn", ".arch-ids", "{arch}",
                "=RELEASE-ID", "=meta-update", "=update", ".bzr", ".bzrignore", ".bzrtags", ".hg",
                ".hgignore", "_darcs")
LEGACY_CACHE = "shoal-backup-cache.json"
STAT_FIELDS = ("st_mode", "st_ino", "st_dev", "st_uid", "st_gid", "st_rsize", "st_creator", "st_type")


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "backup", "snapshot a local directory into TO/Archives/<time>, TO/Latest", """\
  shoal backup ~/Documents work:backups/docs
  shoal backup --exclude '*.tmp' --exclude-vcs ~/src work:backups/src""", cmd_backup,
                description="Upload a versioned snapshot of FROM: a new immutable tree at TO/Archives/<UTC time>, "
                            "linked as TO/Latest too. Unchanged files (same size, mtime and ctime as last time, "
                            "recorded in NODEDIR/private/backupdb.sqlite as tahoe backup records them) are not "
                            "uploaded again. Exit status 1 if any file could not be read (it is left out).")
    p.add_argument("source", metavar="FROM", help="local directory")
    p.add_argument("dest", metavar="ALIAS:TO", help="grid directory to keep the archives in")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="skip names matching a glob")
    p.add_argument("--exclude-from-utf-8", metavar="FILE", help="skip names matching globs listed in FILE")
    p.add_argument("--exclude-vcs", action="store_true", help="skip version control directories (.git, .hg, ...)")
    p.add_argument("--ignore-timestamps", action="store_true", help="upload every file even when unchanged")
    p.add_argument("-v", "--verbose", action="store_true", help="name each file as it is uploaded")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")


def local_metadata(st: os.stat_result) -> dict[str, Any]:
    """A child's metadata as Tahoe's backup records it (get_local_metadata)."""
    metadata: dict[str, Any] = {"ctime": st.st_ctime, "mtime": st.st_mtime}
    for field in STAT_FIELDS:
        if hasattr(st, field):
            metadata[field] = getattr(st, field)
    return metadata


@attrs.define
class Backup:
    client: WebClient
    db: BackupDB
    excluded: list[str]
    progress: Transfer
    verbose: bool
    say: Any
    ignore_timestamps: bool = False
    legacy: dict[str, Any] = attrs.field(factory=dict)
    uploaded: int = 0
    reused: int = 0
    directories: int = 0
    directories_reused: int = 0
    files_checked: int = 0
    directories_checked: int = 0
    skipped: list[str] = attrs.field(factory=list)  # files (and symlinks, special files)
    directories_skipped: list[str] = attrs.field(factory=list)

    def _skip(self, path: str, what: str, *, directory: bool) -> None:
        """A path left out of the backup, warned about in Tahoe 1.20's words (the command then exits 2)."""
        (self.directories_skipped if directory else self.skipped).append(path)
        self.say(f"WARNING: {what} {quoted_path(path)}")

    def wanted(self, name: str) -> bool:
        return not any(fnmatch.fnmatch(name, pat) for pat in self.excluded)

    def healthy(self, known: Known, *, directory: bool = False) -> bool:
        """Whether a remembered cap may be used: yes unless it is due a check and fails it."""
        if not known.should_check:
            return True
        if directory:
            self.directories_checked += 1
        else:
            self.files_checked += 1
        try:
            answer = self.client.request("POST", cap_url(known.cap), {"t": "check", "output": "JSON"})
            return bool(json.loads(answer.text())["results"]["healthy"])
        except (CLIError, ValueError, KeyError, TypeError):
            return False  # cannot check: assume it is bad, as Tahoe does

    def file(self, path: str, st: os.stat_result) -> str:
        stat = FileStat.of(path, st)
        known = self.db.check_file(stat, use_timestamps=not self.ignore_timestamps)
        if known is not None and self.healthy(known):
            if known.should_check:
                self.db.did_check_file_healthy(known.cap)
            return self._reuse(st, known.cap)
        old = self.legacy.get(stat.path)
        if (known is None and not self.ignore_timestamps and isinstance(old, dict)
                and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns):
            self.db.did_upload_file(str(old["cap"]), stat)
            return self._reuse(st, str(old["cap"]))
        if self.verbose:
            self.say(f"uploading {path}")
        with open(path, "rb") as f:
            cap = self.client.request("PUT", "uri", body=f, length=st.st_size, progress=self.progress).text().strip()
        self.db.did_upload_file(cap, stat)
        self.uploaded += 1
        return cap

    def _reuse(self, st: os.stat_result, cap: str) -> str:
        self.reused += 1
        self.progress(st.st_size)
        return cap

    def directory(self, path: str) -> str:
        children: dict[str, Any] = {}
        for name in sorted(os.listdir(path)):
            if not self.wanted(name):
                continue
            child = os.path.join(path, name)
            try:
                st = os.stat(child)
                if os.path.islink(child):  # Tahoe does not follow them: a skip
                    self._skip(child, "cannot backup symlink", directory=False)
                elif os.path.isdir(child):
                    try:
                        cap = self.directory(child)
                    except PermissionError:  # cannot list it
                        self._skip(child, "permission denied on directory", directory=True)
                    else:
                        children[name] = ["dirnode", {"ro_uri": cap, "metadata": local_metadata(st)}]
                elif os.path.isfile(child):
                    children[name] = ["filenode", {"ro_uri": self.file(child, st), "metadata": local_metadata(st)}]
                else:  # a FIFO, socket or device
                    self._skip(child, "cannot backup special", directory=False)
            except PermissionError:
                self._skip(child, "permission denied on file", directory=False)
        dirhash, known = self.db.check_directory({name: info["ro_uri"] for name, (_, info) in children.items()})
        if known is not None and self.healthy(known, directory=True):
            if known.should_check:
                self.db.did_check_directory_healthy(known.cap)
            self.directories_reused += 1
            return known.cap
        self.directories += 1
        cap = self.client.post_text("uri", {"t": "mkdir-immutable"}, json.dumps(children).encode("utf-8")).strip()
        self.db.did_create_directory(cap, dirhash)
        return cap


def quoted_path(path: str) -> str:
    """A local path as Tahoe's warnings quote it: 'path', or a double-quoted escaped form when the
    path holds a quote, a backslash or a character that is not printable."""
    if path.isprintable() and not any(c in path for c in "'\"\\"):
        return f"'{path}'"
    return json.dumps(path)


def total_size(path: str, wanted: Any) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if wanted(d)]
        for name in files:
            if wanted(name):
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
    return total


def load_legacy_cache(path: str) -> dict[str, Any]:
    """shoal's older cache ({abspath: {size, mtime_ns, cap}}), if one is left."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cmd_backup(ctx: Context, args: argparse.Namespace) -> int:
    if not os.path.isdir(args.source):
        raise UsageError(f"{args.source} is not a directory")
    where = resolve(ctx.aliases, args.dest)
    assert where is not None
    excluded = list(args.exclude) + (list(VCS_PATTERNS) if args.exclude_vcs else [])
    if args.exclude_from_utf_8:
        with open(args.exclude_from_utf_8, encoding="utf-8") as f:
            excluded += [line.strip() for line in f if line.strip()]
    base = where.path.strip("/")
    archives = f"{base}/Archives" if base else "Archives"
    ctx.client.request("POST", cap_url(where.cap, archives), {"t": "mkdir"})  # a no-op when it exists
    private = os.path.join(ctx.nodedir, "private")
    os.makedirs(private, mode=0o700, exist_ok=True)
    db = BackupDB(os.path.join(private, FILENAME))
    started = time.time()
    try:
        with Transfer("backup", None) as progress:
            job = Backup(ctx.client, db, excluded, progress, args.verbose, ctx.err, args.ignore_timestamps,
                         legacy=load_legacy_cache(os.path.join(private, LEGACY_CACHE)))
            progress.total = total_size(args.source, job.wanted)
            root = job.directory(args.source)
    finally:
        db.close()
    stamp = time.strftime("%Y-%m-%d_%H:%M:%SZ", time.gmtime(started))
    ctx.client.request("PUT", cap_url(where.cap, f"{archives}/{stamp}"), {"t": "uri"}, body=root.encode("ascii"))
    latest = f"{base}/Latest" if base else "Latest"
    ctx.client.request("PUT", cap_url(where.cap, latest), {"t": "uri"}, body=root.encode("ascii"))
    sep = "" if args.dest.endswith((":", "/")) else "/"
    summary = {"archive": f"{args.dest}{sep}Archives/{stamp}", "cap": root, "files-uploaded": job.uploaded,
               "files-reused": job.reused, "directories": job.directories,
               "directories-reused": job.directories_reused, "checked": job.files_checked + job.directories_checked, "skipped": job.skipped,
               "directories-skipped": job.directories_skipped, "seconds": round(time.time() - started, 3)}
    if args.json:
        ctx.out_json(summary)
    else:  # Tahoe 1.20's report line, which scripts read
        ctx.out(f" {job.uploaded} files uploaded ({job.reused} reused), {len(job.skipped)} files skipped,"
                f" {job.directories} directories created ({job.directories_reused} reused),"
                f" {len(job.directories_skipped)} directories skipped")
        if args.verbose:
            ctx.out(f" {job.files_checked} files checked, {job.directories_checked} directories checked")
        ctx.out(f" backup done, elapsed time: {datetime.timedelta(seconds=int(time.time() - started))}")
    return 2 if job.skipped or job.directories_skipped else 0  # as Tahoe: 2 when anything was skipped
