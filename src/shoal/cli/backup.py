"""`shoal backup`: a versioned snapshot of a local directory in the grid.

Layout (Tahoe-LAFS 1.20 tahoe_backup.py, CLI.rst): every run adds
TO/Archives/<YYYY-MM-DD_HH:MM:SSZ> (UTC), an immutable directory tree
(POST /uri?t=mkdir-immutable, children with their local ctime/mtime as
metadata), and points TO/Latest at it (PUT ...?t=uri). Files are uploaded
with PUT /uri; a file whose size and mtime are unchanged since an earlier run
reuses its cap from NODEDIR/private/shoal-backup-cache.json (shoal's own
file; Tahoe keeps a SQLite backupdb instead), so unchanged data is not sent
again.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import time
from typing import Any

import attrs

from shoal.cli.aliases import resolve, write_private_text
from shoal.cli.context import Context, command
from shoal.cli.errors import UsageError
from shoal.cli.progress import Transfer
from shoal.cli.webclient import WebClient, cap_url

VCS_PATTERNS = ("CVS", "RCS", "SCCS", ".git", ".gitignore", ".cvsignore", ".svn", ".arch-ids", "{arch}",
                "=RELEASE-ID", "=meta-update", "=update", ".bzr", ".bzrignore", ".bzrtags", ".hg",
                ".hgignore", "_darcs")
CACHE = "shoal-backup-cache.json"


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "backup", "snapshot a local directory into TO/Archives/<time>, TO/Latest", """\
  shoal backup ~/Documents work:backups/docs
  shoal backup --exclude '*.tmp' --exclude-vcs ~/src work:backups/src""", cmd_backup,
                description="Upload a versioned snapshot of FROM: a new immutable tree at TO/Archives/<UTC time>, "
                            "linked as TO/Latest too. Unchanged files (same size and mtime as last time) are "
                            "not uploaded again. Exit status 1 if any file could not be read (it is left out).")
    p.add_argument("source", metavar="FROM", help="local directory")
    p.add_argument("dest", metavar="ALIAS:TO", help="grid directory to keep the archives in")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="skip names matching a glob")
    p.add_argument("--exclude-from-utf-8", metavar="FILE", help="skip names matching globs listed in FILE")
    p.add_argument("--exclude-vcs", action="store_true", help="skip version control directories (.git, .hg, ...)")
    p.add_argument("--ignore-timestamps", action="store_true", help="upload every file even when unchanged")
    p.add_argument("-v", "--verbose", action="store_true", help="name each file as it is uploaded")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")


def local_metadata(st: os.stat_result) -> dict[str, Any]:
    return {"ctime": st.st_ctime, "mtime": st.st_mtime}


@attrs.define
class Backup:
    client: WebClient
    cache: dict[str, Any]
    excluded: list[str]
    progress: Transfer
    verbose: bool
    say: Any
    ignore_timestamps: bool = False
    uploaded: int = 0
    reused: int = 0
    directories: int = 0
    skipped: list[str] = attrs.field(factory=list)

    def wanted(self, name: str) -> bool:
        return not any(fnmatch.fnmatch(name, pat) for pat in self.excluded)

    def file(self, path: str, st: os.stat_result) -> str:
        key = os.path.abspath(path)
        known = self.cache.get(key)
        if (not self.ignore_timestamps and known and known.get("size") == st.st_size
                and known.get("mtime_ns") == st.st_mtime_ns):
            self.reused += 1
            self.progress(st.st_size)
            return str(known["cap"])
        if self.verbose:
            self.say(f"uploading {path}")
        with open(path, "rb") as f:
            cap = self.client.request("PUT", "uri", body=f, length=st.st_size, progress=self.progress).text()
        self.cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "cap": cap}
        self.uploaded += 1
        return cap

    def directory(self, path: str) -> str:
        children: dict[str, Any] = {}
        for name in sorted(os.listdir(path)):
            if not self.wanted(name):
                continue
            child = os.path.join(path, name)
            try:
                st = os.stat(child)
                if os.path.isdir(child):
                    children[name] = ["dirnode", {"ro_uri": self.directory(child), "metadata": local_metadata(st)}]
                elif os.path.isfile(child):
                    children[name] = ["filenode", {"ro_uri": self.file(child, st), "metadata": local_metadata(st)}]
            except PermissionError as e:
                self.skipped.append(child)
                self.say(f"skipping {child}: {e.strerror}")
        self.directories += 1
        return self.client.post_text("uri", {"t": "mkdir-immutable"}, json.dumps(children).encode("utf-8"))


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


def load_cache(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_cache(path: str, cache: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_private_text(path, json.dumps(cache))  # it maps local files to caps


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
    cache_path = os.path.join(ctx.nodedir, "private", CACHE)
    cache = load_cache(cache_path)
    started = time.time()
    with Transfer("backup", None) as progress:
        job = Backup(ctx.client, cache, excluded, progress, args.verbose, ctx.err, args.ignore_timestamps)
        progress.total = total_size(args.source, job.wanted)
        root = job.directory(args.source)
    save_cache(cache_path, cache)
    stamp = time.strftime("%Y-%m-%d_%H:%M:%SZ", time.gmtime(started))
    ctx.client.request("PUT", cap_url(where.cap, f"{archives}/{stamp}"), {"t": "uri"}, body=root.encode("ascii"))
    latest = f"{base}/Latest" if base else "Latest"
    ctx.client.request("PUT", cap_url(where.cap, latest), {"t": "uri"}, body=root.encode("ascii"))
    sep = "" if args.dest.endswith((":", "/")) else "/"
    summary = {"archive": f"{args.dest}{sep}Archives/{stamp}", "cap": root, "files-uploaded": job.uploaded,
               "files-reused": job.reused, "directories": job.directories, "skipped": job.skipped,
               "seconds": round(time.time() - started, 3)}
    if args.json:
        ctx.out_json(summary)
    else:
        ctx.out(f"{job.uploaded} files uploaded, {job.reused} unchanged, {job.directories} directories, "
                f"{len(job.skipped)} skipped: {summary['archive']}")
    return 1 if job.skipped else 0
