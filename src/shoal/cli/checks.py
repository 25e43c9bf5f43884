"""`shoal check`, `deep-check`, `manifest`, `stats`: file health and tree walks.

Web API (Tahoe-LAFS 1.20 webapi.rst):
- POST $URL?t=check&output=JSON[&verify=true][&repair=true][&add-lease=true]
  answers {"storage-index", "summary", "results": {"healthy", "recoverable",
  "count-happiness", "count-shares-good", "count-shares-needed",
  "count-shares-expected", "count-wrong-shares", "list-corrupt-shares", ...}};
  with repair=true {"pre-repair-results", "post-repair-results",
  "repair-attempted", "repair-successful"}. A LIT file answers only
  "storage-index": "" and results {"healthy": true}.
- POST $URL?t=stream-deep-check (same flags) and POST $URL?t=stream-manifest
  answer one JSON object per line, {"type": "file"|"directory", "path": [...],
  "cap", "verifycap", "repaircap", "storage-index", "check-results" or
  "check-and-repair-results"}, then a last {"type": "stats", ...} with the
  deep-stats counters; a line starting "ERROR:" ends the walk (the rest is the
  node's explanation).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from shoal.cli.aliases import Remote, resolve
from shoal.cli.context import Context, command
from shoal.cli.errors import CLIError
from shoal.cli.webclient import cap_url, one_line

STATS_KEYS = (
    "count-immutable-files", "count-mutable-files", "count-literal-files", "count-files",
    "count-directories", "size-immutable-files", "size-mutable-files", "size-literal-files",
    "size-directories", "largest-directory", "largest-immutable-file",
)


def _check_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify", action="store_true", help="download and verify every share (slower)")
    p.add_argument("--repair", action="store_true", help="repair what is not healthy")
    p.add_argument("--add-lease", action="store_true", help="add or renew this client's lease on every share")
    p.add_argument("--json", "--raw", dest="json", action="store_true", help="print the node's JSON")


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "check", "check the health of files or directories (not their children)", """\
  shoal check work:report.pdf
  shoal check --verify --repair work:report.pdf
  shoal check --json URI:CHK:... | jq .results.healthy""", cmd_check,
                description="Ask the grid how many shares of each object exist (with --verify: download and "
                            "validate them). Exit status 1 when an object is not healthy (after --repair: "
                            "when the repair did not make it healthy).")
    p.add_argument("locations", nargs="*", metavar="PATH", help="alias:path or caps (default tahoe:)")
    _check_flags(p)

    p = command(groups, "deep-check", "check everything reachable from a directory", """\
  shoal deep-check work:
  shoal deep-check --verify --repair --add-lease -v work:""", cmd_deep_check,
                description="Walk every file and directory under PATH and check each. Exit status 1 when "
                            "anything is unhealthy (after --repair: still unhealthy) or the walk failed.")
    p.add_argument("locations", nargs="*", metavar="PATH", help="alias:path or dircaps (default tahoe:)")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per object")
    _check_flags(p)

    p = command(groups, "manifest", "list every file and directory under a directory", """\
  shoal manifest work:                  # CAP PATH per object
  shoal manifest --storage-index work:  # only storage indexes""", cmd_manifest)
    p.add_argument("where", nargs="?", default="", metavar="PATH")
    which = p.add_mutually_exclusive_group()
    which.add_argument("-s", "--storage-index", action="store_true", help="print storage indexes only")
    which.add_argument("--verify-cap", action="store_true", help="print verify caps only")
    which.add_argument("--repair-cap", action="store_true", help="print repair caps only")
    which.add_argument("--json", "--raw", dest="json", action="store_true", help="the node's JSON lines")

    p = command(groups, "stats", "count and size everything under a directory", """\
  shoal stats work:
  shoal stats --json work: | jq '."count-files"'""", cmd_stats)
    p.add_argument("where", nargs="?", default="", metavar="PATH")
    p.add_argument("--json", "--raw", dest="json", action="store_true", help="the deep-stats JSON")


def _target(ctx: Context, arg: str) -> Remote:
    where = resolve(ctx.aliases, arg)
    assert where is not None
    return Remote(where.cap, "" if where.path.strip("/") == "" else where.path.rstrip("/"))


def _query(t: str, args: argparse.Namespace) -> dict[str, str]:
    q = {"t": t}
    if t == "check":
        q["output"] = "JSON"
    for flag in ("verify", "repair", "add_lease"):
        if getattr(args, flag, False):
            q[flag.replace("_", "-")] = "true"
    return q


def healthy_after(data: dict[str, Any]) -> bool:
    """Whether a t=check answer (with or without repair) ends healthy."""
    if "post-repair-results" in data or "pre-repair-results" in data:
        final = data.get("post-repair-results") or data["pre-repair-results"]
        return bool(final.get("results", {}).get("healthy"))
    return bool(data.get("results", {}).get("healthy"))


def summarize_check(data: dict[str, Any]) -> list[str]:
    """Human lines for one t=check answer."""
    repaired = "pre-repair-results" in data
    before = data["pre-repair-results"] if repaired else data
    results = before.get("results", {})
    si = data.get("storage-index") or before.get("storage-index") or ""
    lines = [f"summary: {before.get('summary') or ('healthy' if results.get('healthy') else 'not healthy')}"]
    if not si:
        lines[0] = "summary: healthy (literal file: its data is in its cap)"
        return lines
    lines.append(f"  storage index: {si}")
    if "count-shares-good" in results:
        lines.append(f"  good shares: {results['count-shares-good']} (encoding {results.get('count-shares-needed')}-of-"
                     f"{results.get('count-shares-expected')}), happiness {results.get('count-happiness', '?')}")
        lines.append(f"  wrong shares: {results.get('count-wrong-shares', 0)}")
    for server, sidx, shnum in results.get("list-corrupt-shares", []):
        lines.append(f"  corrupt: share {shnum} of {sidx} on server {server}")
    if repaired:
        if data.get("repair-attempted"):
            lines.append("  repair " + ("succeeded" if data.get("repair-successful") else "FAILED"))
        else:
            lines.append("  no repair needed")
    return lines


def cmd_check(ctx: Context, args: argparse.Namespace) -> int:
    all_healthy = True
    for loc in args.locations or [""]:
        where = _target(ctx, loc)
        data = ctx.client.request("POST", cap_url(where.cap, where.path), _query("check", args)).json()
        if args.json:
            ctx.out(json.dumps(data))
        else:
            if len(args.locations) > 1:
                ctx.out(f"{loc}:")
            for line in summarize_check(data):
                ctx.out(line)
        all_healthy &= healthy_after(data)
    return 0 if all_healthy else 1


def stream(ctx: Context, where: Remote, query: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The objects of a stream-* answer; CLIError when the node reports ERROR:."""
    resp = ctx.client.request("POST", cap_url(where.cap, where.path), query)
    lines = resp.lines()
    for raw in lines:
        if not raw.strip():
            continue
        if raw.startswith(b"ERROR:"):
            rest = b" ".join(line for line in lines)
            raise CLIError(one_line((raw + b" " + rest).decode("utf-8", "replace"), 500))
        try:
            yield json.loads(raw)
        except ValueError:
            raise CLIError(f"the node sent a line that is not JSON: {one_line(raw.decode('utf-8', 'replace'), 200)}") from None


def cmd_deep_check(ctx: Context, args: argparse.Namespace) -> int:
    rc = 0
    for loc in args.locations or [""]:
        counts = {"objects": 0, "healthy": 0, "unhealthy": 0, "repairs-attempted": 0, "repairs-successful": 0}
        for unit in stream(ctx, _target(ctx, loc), _query("stream-deep-check", args)):
            if args.json:
                ctx.out(json.dumps(unit))
            if unit.get("type") not in ("file", "directory"):
                continue
            counts["objects"] += 1
            data = unit.get("check-and-repair-results") or unit.get("check-results") or {}
            ok = healthy_after(data) if unit.get("storage-index") else True
            counts["healthy" if ok else "unhealthy"] += 1
            if data.get("repair-attempted"):
                counts["repairs-attempted"] += 1
                counts["repairs-successful"] += bool(data.get("repair-successful"))
            if args.verbose and not args.json:
                ctx.out(f"{'/'.join(unit.get('path') or []) or '<root>'}: {'healthy' if ok else 'NOT HEALTHY'}")
        if not args.json:
            line = f"done: {counts['objects']} objects checked, {counts['healthy']} healthy, {counts['unhealthy']} unhealthy"
            if args.repair:
                line += f"; {counts['repairs-attempted']} repairs attempted, {counts['repairs-successful']} successful"
            ctx.out(line)
        if counts["unhealthy"]:
            rc = 1
    return rc


def cmd_manifest(ctx: Context, args: argparse.Namespace) -> int:
    for unit in stream(ctx, _target(ctx, args.where), {"t": "stream-manifest"}):
        if args.json:
            ctx.out(json.dumps(unit))
            continue
        if unit.get("type") not in ("file", "directory"):
            continue
        key = "storage-index" if args.storage_index else "verifycap" if args.verify_cap else "repaircap" if args.repair_cap else None
        if key:
            if unit.get(key):
                ctx.out(unit[key])
        else:
            ctx.out(f"{unit['cap']} {'/'.join(unit.get('path') or [])}".rstrip())
    return 0


def cmd_stats(ctx: Context, args: argparse.Namespace) -> int:
    stats = None
    for unit in stream(ctx, _target(ctx, args.where), {"t": "stream-manifest"}):
        if unit.get("type") == "stats":
            stats = unit.get("stats", unit)
    if stats is None:
        raise CLIError("the node's walk ended without its stats line")
    if args.json:
        ctx.out_json(stats)
        return 0
    width = max(len(k) for k in STATS_KEYS)
    for key in STATS_KEYS:
        if key in stats:
            ctx.out(f"{key.rjust(width)}: {stats[key]}{human_size(stats[key]) if key.startswith(('size', 'largest')) else ''}")
    hist = stats.get("size-files-histogram") or []
    if hist:
        ctx.out("size histogram:")
        for low, high, count in hist:
            ctx.out(f"  {low:>12} - {high:<12} : {count}")
    return 0


def human_size(n: int) -> str:
    if n < 1000:
        return ""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"  ({n / scale:.1f} {unit})"
    return ""
