"""What every grid command shares: the node directory and node URL (as Tahoe's
CLI finds them), aliases, the web client, output helpers, exit codes, and
subcommand registration with an example in every --help.

Facts (Tahoe-LAFS 1.20 scripts/cli.py, default_nodedir.py, tahoe_status.py):
the node directory defaults to ~/.tahoe; ``-d/--node-directory`` picks
another; the node's web API URL is the one line of NODEDIR/node.url unless
``--node-url`` gives it; NODEDIR/private/api_auth_token authorises /private/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

import attrs

from shoal.cli.aliases import load_aliases
from shoal.cli.errors import UsageError
from shoal.cli.webclient import WebClient

DEFAULT_NODEDIR = os.path.join("~", ".tahoe")

EXIT_CODES = """exit status:
  0  success
  1  the operation failed (the node's error, an unreachable node, a missing
     local file; check/deep-check: something is unhealthy)
  2  usage: bad option or argument, unknown alias, no node.url"""


def add_global_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """-d/--node-directory and --node-url; on subcommands with SUPPRESS so both positions work."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("-d", "--node-directory", metavar="NODEDIR", default=default,
                        help=f"the client node's directory (node.url, private/aliases); default {DEFAULT_NODEDIR}")
    parser.add_argument("--node-url", metavar="URL", default=default,
                        help="the node's web API, e.g. http://127.0.0.1:3456/ (instead of NODEDIR/node.url)")


def command(
    groups: argparse._SubParsersAction,
    name: str,
    help: str,
    example: str,
    func: Callable[[Context, argparse.Namespace], int | None],
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A grid subcommand: global options, an example and the exit codes in its --help."""
    p = groups.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=f"example:\n{example}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(p, suppress=True)
    p.set_defaults(func=lambda args: func(Context.from_args(args), args))
    return p


@attrs.define
class Context:
    nodedir: str
    node_url_option: str | None
    stdout: IO[str] = attrs.field(factory=lambda: sys.stdout)
    stderr: IO[str] = attrs.field(factory=lambda: sys.stderr)
    _client: WebClient | None = None
    _aliases: dict[str, str] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        nodedir = getattr(args, "node_directory", None) or DEFAULT_NODEDIR
        return cls(os.path.abspath(os.path.expanduser(nodedir)), getattr(args, "node_url", None))

    @property
    def aliases(self) -> dict[str, str]:
        if self._aliases is None:
            self._aliases = load_aliases(self.nodedir)
        return self._aliases

    def reload_aliases(self) -> None:
        self._aliases = None

    @property
    def client(self) -> WebClient:
        if self._client is None:
            self._client = WebClient(self._node_url(), self._token())
        return self._client

    def _node_url(self) -> str:
        if self.node_url_option:
            return self.node_url_option
        path = os.path.join(self.nodedir, "node.url")
        try:
            with open(path, encoding="utf-8") as f:
                url = f.read().strip()
        except OSError:
            raise UsageError(f"no node.url in {self.nodedir}: is the client node running? "
                             "(pick its directory with -d NODEDIR, or give --node-url URL)") from None
        if not url:
            raise UsageError(f"{path} is empty")
        return url

    def _token(self) -> str | None:
        try:
            with open(os.path.join(self.nodedir, "private", "api_auth_token"), encoding="ascii") as f:
                return f.read().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)

    def out_json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, sort_keys=True), file=self.stdout)
