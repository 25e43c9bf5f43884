"""`shoal create-node` / `create-client`: write a node directory as `tahoe create-node` does.

Same flags, same tahoe.cfg keys; secrets and keys are made at first start.
--helper writes [helper]enabled = true; --join (a magic-wormhole invite) is
refused with a one-line error, and the global --wormhole-server and
--wormhole-invite-appid are accepted and unused, as Tahoe uses them only for --join.
--hostname H picks a free TCP port now and writes tub.port = tcp:PORT and
tub.location = tcp:H:PORT; --port and --location are written as given.
"""

import argparse
import os
import socket

import yaml

from shoal.errors import Fault, ShoalError
from shoal.node.identity import write_atomically

DEFAULT_WEBPORT = "tcp:3456:interface=127.0.0.1"
TAC_STUB = (
    "\nimport sys\n"
    'print("This node directory is run with `shoal run` or `tahoe run` (Tahoe-LAFS >= 1.11).")\n'
    "sys.exit(1)\n"
)


class CreateError(ShoalError):
    """The create-node arguments cannot be used (the message says which)."""

    fault = Fault.CALLER


def allocate_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_common_flags(p: argparse.ArgumentParser, client_only: bool) -> None:
    p.add_argument("--nickname", "-n", default=None)
    p.add_argument("--introducer", "-i", default=None, help="introducer FURL")
    p.add_argument("--webport", "-p", default=DEFAULT_WEBPORT, help="web API endpoint, or 'none'")
    p.add_argument("--shares-needed", type=int, default=3)
    p.add_argument("--shares-happy", type=int, default=7)
    p.add_argument("--shares-total", type=int, default=10)
    p.add_argument("--basedir", "-C", default=None)
    p.add_argument("--join", default=None, metavar="INVITE-CODE",
                   help="join a grid with a magic-wormhole invite code (not supported by shoal)")
    if not client_only:
        p.add_argument("--helper", action="store_true", help="enable the upload helper ([helper]enabled)")
        p.add_argument("--listen", default="tcp", help="'tcp' or 'none'")
        p.add_argument("--hostname", default=None)
        p.add_argument("--port", default=None, help="Foolscap listening endpoint (with --location)")
        p.add_argument("--location", default=None, help="Foolscap location hints (with --port)")
        p.add_argument("--storage-dir", default=None)
        p.add_argument("--no-storage", action="store_true")
    p.add_argument("nodedir", nargs="?", default=None)


def _where(args: argparse.Namespace) -> tuple[str, str]:
    listen = getattr(args, "listen", "none")
    port, location, hostname = getattr(args, "port", None), getattr(args, "location", None), getattr(args, "hostname", None)
    if listen == "none":
        if hostname or port or location:
            raise CreateError("--hostname/--port/--location cannot be used with --listen=none")
        return "disabled", "disabled"
    if listen != "tcp":
        raise CreateError(f"--listen must be 'tcp' or 'none', not {listen!r} (tor and i2p are not supported)")
    if bool(port) != bool(location):
        raise CreateError("--port and --location must be used together")
    if port and location:
        if hostname:
            raise CreateError("--hostname cannot be used with --location/--port")
        return port, location
    if not hostname:
        raise CreateError("--listen=tcp requires --hostname= (or --port and --location)")
    new_port = allocate_tcp_port()
    return f"tcp:{new_port}", f"tcp:{hostname}:{new_port}"


def create_node(args: argparse.Namespace, client_only: bool = False) -> int:
    basedir = args.nodedir or args.basedir
    if not basedir:
        raise CreateError("no node directory given")
    basedir = os.path.abspath(os.path.expanduser(basedir))
    if os.path.exists(basedir) and os.listdir(basedir):
        raise CreateError(f"the base directory {basedir} is not empty; use a different or empty one")
    if args.join is not None:
        raise CreateError("--join: magic-wormhole invites are not supported; give --introducer FURL "
                          "and the shares-* options instead")
    if not (1 <= args.shares_needed <= args.shares_total <= 256) or not (
        1 <= args.shares_happy <= args.shares_total
    ):
        raise CreateError("need 1 <= shares-needed <= shares-total <= 256 and 1 <= shares-happy <= shares-total")
    tub_port, tub_location = _where(args)
    webport = args.webport or "none"
    if webport.lower() == "none":
        webport = ""
    storage = not (client_only or getattr(args, "no_storage", False))
    storage_dir = getattr(args, "storage_dir", None)
    os.makedirs(os.path.join(basedir, "private"), mode=0o700, exist_ok=True)
    lines = [
        "# -*- mode: conf; coding: utf-8 -*-",
        "",
        "# This file controls the configuration of the shoal (Tahoe-LAFS compatible)",
        "# node that lives in this directory. It is only read at node startup.",
        "",
        "",
        "[node]",
        f"nickname = {args.nickname or ''}",
        "reveal-IP-address = true",
        f"web.port = {webport}",
        "web.static = public_html",
        f"tub.port = {tub_port}",
        f"tub.location = {tub_location}",
        "",
        "[client]",
        "helper.furl =",
        "",
        "# Encoding parameters this client will use for newly-uploaded files",
        f"shares.needed = {args.shares_needed}",
        f"shares.happy = {args.shares_happy}",
        f"shares.total = {args.shares_total}",
        "",
        "[storage]",
        "# Shall this node provide storage service?",
        f"enabled = {'true' if storage else 'false'}",
        "#readonly =",
        "reserved_space = 1G",
        f"storage_dir = {storage_dir}" if storage_dir else "#storage_dir =",
        "#max_space =",
        "#expire.enabled =",
        "#expire.mode =",
        "",
        "[helper]",
        "# Shall this node run a helper service that clients can use?",
        f"enabled = {'true' if getattr(args, 'helper', False) else 'false'}",
        "",
    ]
    # `tahoe run` recognises a node directory by this file's name: keep it,
    # so Tahoe-LAFS can run a shoal-made node directory unchanged.
    with open(os.path.join(basedir, "tahoe-client.tac"), "w", encoding="utf-8") as f:
        f.write(TAC_STUB)
    with open(os.path.join(basedir, "tahoe.cfg"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    if args.introducer:
        text = yaml.safe_dump({"introducers": {"default": {"furl": args.introducer}}})
        write_atomically(os.path.join(basedir, "private", "introducers.yaml"), text.encode("utf-8"))
    print(f"Node created in {basedir}")
    if not args.introducer:
        print(f" Please add introducers to {os.path.join(basedir, 'private', 'introducers.yaml')}!")
        print(" The node cannot connect to a grid without it.")
    if not args.nickname:
        print(f" Please set [node]nickname= in {os.path.join(basedir, 'tahoe.cfg')}")
    return 0


def add_introducer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="tcp", help="'tcp' (introducers must listen)")
    p.add_argument("--hostname", default=None)
    p.add_argument("--port", default=None, help="Foolscap listening endpoint (with --location)")
    p.add_argument("--location", default=None, help="Foolscap location hints (with --port)")
    p.add_argument("--basedir", "-C", default=None)
    p.add_argument("nodedir", nargs="?", default=None)


def create_introducer(args: argparse.Namespace) -> int:
    basedir = args.nodedir or args.basedir
    if not basedir:
        raise CreateError("no node directory given")
    basedir = os.path.abspath(os.path.expanduser(basedir))
    if os.path.exists(basedir) and os.listdir(basedir):
        raise CreateError(f"the base directory {basedir} is not empty; use a different or empty one")
    if args.listen == "none":
        raise CreateError("an introducer must listen: --listen=none is not allowed")
    tub_port, tub_location = _where(args)
    os.makedirs(os.path.join(basedir, "private"), mode=0o700, exist_ok=True)
    with open(os.path.join(basedir, "tahoe-introducer.tac"), "w", encoding="utf-8") as f:
        f.write(TAC_STUB)
    with open(os.path.join(basedir, "tahoe.cfg"), "w", encoding="utf-8") as f:
        f.write(
            "# -*- mode: conf; coding: utf-8 -*-\n\n"
            "# This file controls the configuration of the shoal introducer in this directory.\n\n"
            "[node]\n"
            "nickname = introducer\n"
            "reveal-IP-address = true\n"
            "web.port =\n"
            "web.static = public_html\n"
            f"tub.port = {tub_port}\n"
            f"tub.location = {tub_location}\n"
        )
    print(f"Introducer created in {basedir}")
    return 0
