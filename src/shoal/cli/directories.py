"""`shoal ls`, `mkdir`, `mv`, `ln`, `unlink`: directory entries in the grid.

Web API (Tahoe-LAFS 1.20 webapi.rst):
- ls: GET /uri/$CAP[/PATH]?t=json answers ["dirnode", {"children": {name:
  [type, {"ro_uri", "rw_uri", "size", "mutable", "metadata": {"tahoe":
  {"linkcrtime", "linkmotime"}}}]}}] for a directory, [type, {...}] for a file.
- mkdir: POST /uri?t=mkdir (unlinked, answers the write cap) or
  POST /uri/$DIRCAP/PATH?t=mkdir (creates intermediate directories; an
  existing directory is left as it is).
- ln/mv: read the source's cap with t=json, then PUT DEST?t=uri&replace=only-files
  with the cap as body (409 when DEST is a directory); mv then DELETEs the source.
  A DEST ending in "/" means "inside that directory, under the same name".
- unlink: DELETE /uri/$DIRCAP/PATH.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from shoal.cli.aliases import Remote, resolve
from shoal.cli.context import Context, command
from shoal.cli.errors import CLIError, UsageError
from shoal.cli.webclient import WebAPIError, cap_url

HALF_YEAR = 182 * 24 * 3600


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "ls", "list a directory (default tahoe:)", """\
  shoal ls                      # the default alias tahoe:
  shoal ls -l work:photos       # type/permissions, size, link time, name
  shoal ls --json work: | jq .  # the node's JSON for scripts""", cmd_ls)
    p.add_argument("where", nargs="?", default="", metavar="PATH", help="alias:path or a cap")
    p.add_argument("-l", "--long", action="store_true", help="show type/permissions, size and link time")
    p.add_argument("--uri", action="store_true", help="show each child's cap")
    p.add_argument("--readonly-uri", action="store_true", help="show each child's read-only cap")
    p.add_argument("-F", "--classify", action="store_true", help="append / to directories, * to mutable files")
    p.add_argument("--json", action="store_true", help="print the node's JSON description")

    p = command(groups, "mkdir", "create a directory (unlinked, or at PATH)", """\
  shoal mkdir                   # unlinked: prints the new directory's write cap
  shoal mkdir work:photos/2024  # creates parents as needed""", cmd_mkdir)
    p.add_argument("where", nargs="?", default="", metavar="PATH", help="alias:path (none: unlinked)")
    p.add_argument("--format", type=str.upper, choices=("SDMF", "MDMF"), help="mutable format of the new directory")

    for name, func, help, example in (
        ("mv", cmd_mv, "move a link within the grid", "  shoal mv work:draft.txt work:final.txt\n"
                                                       "  shoal mv work:a.txt work:archive/   # keep the name"),
        ("ln", cmd_ln, "add another link to a file or directory", "  shoal ln work:report.pdf tahoe:shared/report.pdf\n"
                                                                 "  shoal ln work:report.pdf tahoe:shared/"),
    ):
        p = command(groups, name, help, example, func)
        p.add_argument("source", metavar="FROM", help="alias:path of an existing link")
        p.add_argument("dest", metavar="TO", help="alias:path (ending in / for 'inside this directory')")

    p = command(groups, "unlink", "remove a link from its directory", "  shoal unlink work:old.txt", cmd_unlink)
    p.add_argument("where", metavar="PATH", help="alias:path of the link to remove")


def remote(ctx: Context, arg: str) -> Remote:
    where = resolve(ctx.aliases, arg)
    assert where is not None
    return where


def describe(ctx: Context, where: Remote) -> tuple[str, dict[str, Any]]:
    """(node type, info) of a grid object, from t=json; CLIError when nothing is there."""
    found = ctx.client.describe(where.cap, where.path)
    if found is None:
        raise CLIError(f"no such file or directory: {where.path or where.cap}")
    return found


def child_cap(info: dict[str, Any]) -> str:
    cap = info.get("rw_uri") or info.get("ro_uri")
    if not cap:
        raise CLIError("the node described an object without a cap")
    return str(cap)


def cmd_ls(ctx: Context, args: argparse.Namespace) -> int:
    where = remote(ctx, args.where)
    if args.json:
        ctx.out(ctx.client.request("GET", cap_url(where.cap, where.path.rstrip("/")), {"t": "json"}).text())
        return 0
    kind, info = describe(ctx, where)
    if kind == "dirnode":
        children = info.get("children", {})
    else:
        children = {where.name or where.cap: [kind, info]}
    rows = [ls_row(name, child[0], child[1], args) for name, child in sorted(children.items())]
    for line in format_rows(rows, right_aligned={1} if args.long else set()):
        ctx.out(line)
    return 0


def ls_row(name: str, kind: str, info: dict[str, Any], args: argparse.Namespace, now: float | None = None) -> list[str]:
    rw, ro = info.get("rw_uri"), info.get("ro_uri")
    row = []
    if args.long:
        t = "d" if kind == "dirnode" else "-" if kind == "filenode" else "?"
        perms = t + ("r" if ro else "-") + ("w" if rw else "-") + ("x" if kind == "dirnode" else "-")
        size = "-" if kind == "dirnode" else str(info.get("size", "?")) if kind == "filenode" else "?"
        row += [perms, "?" if size == "None" else size, link_time(info.get("metadata", {}), now)]
    suffix = ""
    if args.classify:
        suffix = "/" if kind == "dirnode" else "*" if kind == "filenode" and rw else "?" if kind != "filenode" else ""
    row.append(name + suffix)
    if args.uri:
        row.append(rw or ro or "-")
    if args.readonly_uri:
        row.append(ro or "-")
    return row


def link_time(metadata: dict[str, Any], now: float | None = None) -> str:
    tahoe = metadata.get("tahoe", {}) if isinstance(metadata, dict) else {}
    when = tahoe.get("linkcrtime") or metadata.get("ctime")
    if not isinstance(when, int | float):
        return "-"
    old = (now if now is not None else time.time()) - when > HALF_YEAR
    return time.strftime("%b %d  %Y" if old else "%b %d %H:%M", time.localtime(when))


def format_rows(rows: list[list[str]], right_aligned: set[int]) -> list[str]:
    """Columns padded to their widest cell (the sizes right-aligned)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        " ".join(cell.rjust(widths[i]) if i in right_aligned else cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip()
        for r in rows
    ]


def cmd_mkdir(ctx: Context, args: argparse.Namespace) -> int:
    query = {"t": "mkdir"}
    if args.format:
        query["format"] = args.format
    where = remote(ctx, args.where) if args.where else None
    if where is None or not where.path.strip("/"):
        ctx.out(ctx.client.post_text("uri", query))
    else:
        ctx.out(ctx.client.post_text(cap_url(where.cap, where.path.strip("/")), query))
    return 0


def link(ctx: Context, source: str, dest: str, move: bool) -> None:
    src = remote(ctx, source)
    if not src.path.strip("/"):
        raise UsageError(f"{source!r} is not a link in a directory")
    kind, info = describe(ctx, src)
    cap = child_cap(info)
    dst = remote(ctx, dest)
    path = dst.path
    if not path or path.endswith("/"):
        path += src.name
    try:
        ctx.client.request("PUT", cap_url(dst.cap, path), {"t": "uri", "replace": "only-files"}, body=cap.encode("ascii"))
    except WebAPIError as e:
        if e.status == 409:
            raise CLIError(f"{dest} is a directory: to put {src.name!r} inside it, end it with '/'") from None
        raise
    if move:
        ctx.client.request("DELETE", cap_url(src.cap, src.path.rstrip("/")))


def cmd_mv(ctx: Context, args: argparse.Namespace) -> int:
    link(ctx, args.source, args.dest, move=True)
    return 0


def cmd_ln(ctx: Context, args: argparse.Namespace) -> int:
    link(ctx, args.source, args.dest, move=False)
    return 0


def cmd_unlink(ctx: Context, args: argparse.Namespace) -> int:
    where = remote(ctx, args.where)
    if not where.path.strip("/"):
        raise UsageError("unlink removes a link from a directory: give alias:path, not a whole directory")
    try:
        ctx.client.request("DELETE", cap_url(where.cap, where.path.rstrip("/")))
    except WebAPIError as e:
        if e.status == 404:
            raise CLIError(f"no such file or directory: {args.where}") from None
        raise
    return 0

