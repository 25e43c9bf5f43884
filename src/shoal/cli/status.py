"""`shoal status`: what the client node is doing and has done.

Web API (Tahoe-LAFS 1.20 webapi.rst, web/status.py): GET /status?t=json gives
{"active": [...], "recent": [...]}, each operation with "type" (upload,
download, publish, retrieve, mapupdate), "storage-index-string", "status",
"total-size" and progress fields ("progress" for downloads; "progress-hash",
"progress-ciphertext", "progress-encode-push" for uploads); GET
/statistics?t=json gives {"counters": {"uploader.files_uploaded",
"uploader.bytes_uploaded", "downloader.files_downloaded",
"downloader.bytes_downloaded", ...}, "stats": {"node.uptime", ...}}.
"""

from __future__ import annotations

import argparse
from typing import Any

from shoal.cli.context import Context, command
from shoal.encoding.abbreviate import abbreviate_space, abbreviate_time


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "status", "show the node's transfers and totals", """\
  shoal status
  shoal -d ~/grid/client status --json""", cmd_status)
    p.add_argument("-v", "--verbose", action="store_true", help="include mutable-file operations")
    p.add_argument("--json", action="store_true", help='{"status": ..., "statistics": ...} as the node gives them')


def _space(n: Any) -> str:
    return abbreviate_space(n if isinstance(n, int | float) else None)


def progress_of(op: dict[str, Any]) -> float | None:
    """An operation's progress in [0, 1], when the node reports it."""
    if op.get("type") == "upload":
        parts = [op.get(k) for k in ("progress-hash", "progress-ciphertext", "progress-encode-push")]
        if all(isinstance(p, int | float) for p in parts):
            return sum(parts) / 3  # type: ignore[arg-type]
    p = op.get("progress")
    return float(p) if isinstance(p, int | float) else None


def op_line(op: dict[str, Any]) -> str:
    p = progress_of(op)
    done = f"{p * 100:5.1f}%" if p is not None else "    ? "
    return (f"  {op.get('type', '?'):<9} {str(op.get('storage-index-string') or '-')[:26]:<26} "
            f"{_space(op.get('total-size')):>9} {done}  {op.get('status', '')}")


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    status = ctx.client.get_json("status")
    stats = ctx.client.get_json("statistics")
    if args.json:
        ctx.out_json({"status": status, "statistics": stats})
        return 0
    counters = stats.get("counters", {})
    uptime = stats.get("stats", {}).get("node.uptime")
    ctx.out(f"Statistics (for last {abbreviate_time(uptime if isinstance(uptime, int | float) else None)}):")
    ctx.out(f"    uploaded {abbreviate_space(counters.get('uploader.bytes_uploaded', 0))} in "
            f"{counters.get('uploader.files_uploaded', 0)} files")
    ctx.out(f"  downloaded {abbreviate_space(counters.get('downloader.bytes_downloaded', 0))} in "
            f"{counters.get('downloader.files_downloaded', 0)} files")
    ctx.out("")
    shown = None if args.verbose else ("upload", "download")
    for title, key in (("active operations", "active"), ("recent operations", "recent")):
        ops = [op for op in status.get(key) or [] if shown is None or op.get("type") in shown]
        if not ops:
            ctx.out(f"no {title}.")
            continue
        ctx.out(f"{title}:")
        for op in ops:
            ctx.out(op_line(op))
    return 0
