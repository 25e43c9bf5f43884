"""Entry point of the `shoal` console script: builds the parser, dispatches, and
turns every ShoalError into one line on stderr and a nonzero exit status."""

import argparse
import sys
from collections.abc import Sequence

from shoal import __version__
from shoal.cli import debug
from shoal.errors import ShoalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="shoal storage grid")
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    debug.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ShoalError as e:
        print(f"shoal: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except OSError as e:
        print(f"shoal: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
