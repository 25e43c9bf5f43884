"""The `shoal` console script: composes the command groups of cli/ and node/.

Exit status: 0 success, 1 the operation failed, 2 usage (argparse's own
errors, unknown aliases, a missing node.url). Every error is one line on
stderr, never a traceback.
"""

import argparse
import contextlib
import io
import sys
from collections.abc import Sequence

from shoal.cli import alias_commands, backup, checks, copy, debug, directories, files, status
from shoal.cli import webopen as webopen_command
from shoal.cli.context import EXIT_CODES, add_global_options
from shoal.errors import ShoalError
from shoal.node import commands as node_commands
from shoal.versions import version_text

EXAMPLES = """examples:
  shoal create-alias work                # a new directory, reachable as work:
  shoal put report.pdf work:report.pdf   # upload and link
  shoal ls -l work:
  shoal get work:report.pdf copy.pdf
  shoal cp -r ~/photos work:             # a whole tree, as work:photos
  shoal -d ~/grid/client deep-check --verify work:"""


class _VersionAction(argparse.Action):
    """Like argparse's "version", but the library versions are looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoal",
        description="shoal storage grid (Tahoe-LAFS compatible)",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="show shoal's version and those of its key libraries, then exit")
    add_global_options(parser)
    node_commands.add_global_options(parser)
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    node_commands.register(groups)
    for group in (files, directories, copy, alias_commands, checks, status, backup, webopen_command):
        group.register(groups)
    debug.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.quiet and args.command != "run"  # Tahoe's -q silences a command's stdout
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            return int(args.func(args) or 0)
    except ShoalError as e:
        print(f"shoal: error: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 1))
    except KeyboardInterrupt:
        print("shoal: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"shoal: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
