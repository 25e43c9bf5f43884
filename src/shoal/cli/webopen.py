"""`shoal webopen [ALIAS:PATH]`: open the node's web page of a file or directory in a browser.

As Tahoe-LAFS 1.20's `tahoe webopen` (scripts/tahoe_webopen.py): the URL is the node's
URL plus ``uri/$CAP[/PATH]`` (the welcome page without an argument), ``?t=info`` with
-i/--info, handed to Python's webbrowser module (so $BROWSER picks the browser).
Nothing is printed; the URL holds a cap, so it is not shown in an error either.
"""

from __future__ import annotations

import argparse
import webbrowser

from shoal.cli.aliases import resolve
from shoal.cli.context import Context, command
from shoal.cli.errors import CLIError
from shoal.cli.webclient import cap_url


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "webopen", "open a file or directory (or the welcome page) in a web browser", """\
  shoal webopen                  # the node's welcome page
  shoal webopen work:photos      # a directory page
  shoal webopen -i work:a.txt    # a file's info page""", cmd_webopen)
    p.add_argument("where", nargs="?", default="", metavar="ALIAS:PATH", help="what to open (default: the welcome page)")
    p.add_argument("-i", "--info", action="store_true", help="open the t=info page")


def webopen_url(ctx: Context, where: str, info: bool) -> str:
    url = ctx.client.node_url
    if not url.endswith("/"):
        url += "/"
    if where:
        remote = resolve(ctx.aliases, where)
        assert remote is not None
        path = "" if remote.path == "/" else remote.path
        url += cap_url(remote.cap, path)
    if info:
        url += "?t=info"
    return url


def cmd_webopen(ctx: Context, args: argparse.Namespace) -> int:
    if not webbrowser.open(webopen_url(ctx, args.where, args.info)):
        raise CLIError("no web browser could be started (set BROWSER to the one to use)")
    return 0
