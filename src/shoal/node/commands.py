"""Node administration commands: create-node, create-client, run; and the global
options Tahoe's `tahoe` takes before any command (--eliot-destination,
--help-eliot-destinations, the magic-wormhole server options, -q/--quiet)."""

import argparse
import sys
from typing import Any

from shoal.node.create import add_common_flags, add_introducer_flags, create_introducer, create_node
from shoal.node.eliot_log import HELP, EliotDestinationError, FileDestinationSpec, parse_destination


def _destination(text: str) -> FileDestinationSpec:
    try:
        return parse_destination(text)
    except EliotDestinationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _HelpEliotDestinations(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        sys.stdout.write(HELP)
        parser.exit(0)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Tahoe 1.20's global options (scripts/runner.py), before the command name."""
    parser.add_argument("--eliot-destination", metavar="DESCRIPTION", type=_destination, action="append",
                        dest="eliot_destinations", default=[],
                        help="write an eliot log of the node: file:PATH[,rotate_length=N][,max_rotated_files=N]"
                             " (- for stdout); may be given more than once")
    parser.add_argument("--help-eliot-destinations", action=_HelpEliotDestinations,
                        help="describe the --eliot-destination forms and exit")
    # Accepted as Tahoe accepts them; they only matter to `create-node --join`, which shoal refuses.
    parser.add_argument("--wormhole-server", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--wormhole-invite-appid", default=None, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help="no output from the command on stdout")


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = groups.add_parser("create-node", help="create a node directory (client + storage)")
    add_common_flags(p, client_only=False)
    p.set_defaults(func=lambda a: create_node(a, client_only=False))

    p = groups.add_parser("create-client", help="create a client-only node directory")
    add_common_flags(p, client_only=True)
    p.set_defaults(func=lambda a: create_node(a, client_only=True))

    p = groups.add_parser("create-introducer", help="create an introducer node directory")
    add_introducer_flags(p)
    p.set_defaults(func=create_introducer)

    p = groups.add_parser("run", help="run a node in the foreground")
    p.add_argument("--allow-stdin-close", action="store_true", help="keep running when stdin closes")
    p.add_argument("--basedir", "-C", default=None, help="the node directory (as NODEDIR)")
    p.add_argument("nodedir", nargs="?", default=None,
                   help="the node directory (default: --basedir, then the global -d, then .)")
    p.set_defaults(func=_run)

    from shoal.node import log_command  # `shoal log NODEDIR`

    log_command.register(groups)


def _run(args: argparse.Namespace) -> int:
    from shoal.node.run import run_node

    nodedir = args.nodedir or args.basedir or getattr(args, "node_directory", None) or "."
    return run_node(nodedir, args.allow_stdin_close, getattr(args, "eliot_destinations", []))
