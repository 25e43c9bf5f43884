"""The `shoal` console script: composes the command groups of cli/ and node/.

Every ShoalError becomes one line on stderr and exit status 1.
"""

import argparse
import sys
from collections.abc import Sequence

from shoal import __version__
from shoal.cli import debug
from shoal.errors import ShoalError
from shoal.node import commands as node_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="shoal storage grid (Tahoe-LAFS compatible)")
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    node_commands.register(groups)
    debug.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ShoalError as e:
        print(f"shoal: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"shoal: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
