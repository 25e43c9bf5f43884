"""`shoal create-alias`, `add-alias`, `list-aliases`: names for directory caps,
kept in NODEDIR/private/aliases exactly as Tahoe-LAFS 1.20 keeps them (see
shoal.cli.aliases). create-alias makes a new directory with POST /uri?t=mkdir.
"""

from __future__ import annotations

import argparse

from shoal.cli.aliases import add_alias, check_alias_name, directory_cap, readonly_text
from shoal.cli.context import Context, command
from shoal.cli.errors import UsageError


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "create-alias", "create a new directory and name it", """\
  shoal create-alias tahoe      # the default alias, used when a path has none
  shoal create-alias work       # then: shoal put notes.txt work:notes.txt""", cmd_create_alias)
    p.add_argument("alias", metavar="ALIAS[:]")

    p = command(groups, "add-alias", "name an existing directory cap", """\
  shoal add-alias shared URI:DIR2:...   # then: shoal ls shared:""", cmd_add_alias)
    p.add_argument("alias", metavar="ALIAS[:]")
    p.add_argument("cap", metavar="DIRCAP")

    p = command(groups, "list-aliases", "list aliases and their directory caps", """\
  shoal list-aliases
  shoal list-aliases --readonly-uri   # the caps to share read-only
  shoal list-aliases --json""", cmd_list_aliases)
    p.add_argument("--readonly-uri", action="store_true", help="show read-only caps")
    p.add_argument("--json", action="store_true", help='{"alias": {"readwrite": cap, "readonly": cap}}')


def cmd_create_alias(ctx: Context, args: argparse.Namespace) -> int:
    name = check_alias_name(args.alias)
    if name in ctx.aliases:
        raise UsageError(f"alias {name!r} already exists")
    cap = ctx.client.post_text("uri", {"t": "mkdir"})
    add_alias(ctx.nodedir, name, cap)
    ctx.err(f"alias {name}: created")
    return 0


def cmd_add_alias(ctx: Context, args: argparse.Namespace) -> int:
    name = check_alias_name(args.alias)
    cap = directory_cap(args.cap, "DIRCAP").to_string()
    add_alias(ctx.nodedir, name, cap)
    ctx.err(f"alias {name}: added")
    return 0


def cmd_list_aliases(ctx: Context, args: argparse.Namespace) -> int:
    details = {name: {"readwrite": cap, "readonly": readonly_text(cap)} for name, cap in sorted(ctx.aliases.items())}
    if args.json:
        ctx.out_json(details)
        return 0
    width = max((len(name) for name in details), default=0)
    for name, caps in details.items():
        ctx.out(f"{name.rjust(width)}: {caps['readonly' if args.readonly_uri else 'readwrite']}")
    return 0
