"""Node administration commands: create-node, create-client, run."""

import argparse

from shoal.node.create import add_common_flags, add_introducer_flags, create_introducer, create_node


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
    p.add_argument("nodedir", nargs="?", default=".")
    p.set_defaults(func=_run)

    from shoal.node import log_command  # `shoal log NODEDIR`

    log_command.register(groups)


def _run(args: argparse.Namespace) -> int:
    from shoal.node.run import run_node

    return run_node(args.nodedir, args.allow_stdin_close)
