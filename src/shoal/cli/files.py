"""`shoal put` and `shoal get`: one file between the local disk and the grid.

Web API (Tahoe-LAFS 1.20 webapi.rst): PUT /uri (unlinked upload, answers the
cap), PUT /uri/$DIRCAP/PATH (upload and link, creating intermediate
directories), PUT /uri/$MUTABLE_WRITECAP (replace a mutable file's
contents), GET /uri/$CAP[/PATH]. Both directions stream in chunks: a file
goes out with its Content-Length, stdin goes out chunked, a download goes to
a temporary file renamed into place only once complete (Response.save).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from typing import BinaryIO

from shoal.cli.aliases import resolve
from shoal.cli.context import Context, command
from shoal.cli.copy import local_name_problem
from shoal.cli.errors import UsageError
from shoal.cli.progress import Transfer
from shoal.cli.webclient import WebClient, cap_url
from shoal.crypto import rsa

MUTABLE_CAP_PREFIXES = ("URI:SSK:", "URI:MDMF:")
FORMATS = ("CHK", "SDMF", "MDMF")


def register(groups: argparse._SubParsersAction) -> None:
    p = command(groups, "put", "upload a file (from LOCAL_FILE or stdin) into the grid", """\
  shoal put photo.jpg                 # unlinked upload: prints the new file's cap
  shoal put photo.jpg tahoe:photo.jpg # upload and link it into the default alias
  cat log | shoal put - work:log.txt  # from stdin
  shoal put --format=MDMF notes.txt   # a mutable file""", cmd_put,
                description="Upload a file. Without REMOTE_FILE the file is not linked into any directory "
                            "and its cap is printed; otherwise it is linked at REMOTE_FILE (alias:path, "
                            "default alias tahoe:) and its cap printed. A mutable file's write cap as "
                            "REMOTE_FILE replaces that file's contents.")
    p.add_argument("local", nargs="?", default="-", metavar="LOCAL_FILE", help="file to upload ('-' or none: stdin)")
    p.add_argument("remote", nargs="?", metavar="REMOTE_FILE", help="where to link it: alias:path or a mutable write cap")
    p.add_argument("-m", "--mutable", action="store_true", help="create a mutable file (the node's default format)")
    p.add_argument("--format", type=str.upper, choices=FORMATS, help="CHK (immutable, default), SDMF or MDMF")
    p.add_argument("--private-key-path", metavar="PEM_FILE",
                   help="mutable files only: sign the new file with this PEM-encoded 2048-bit RSA private key "
                        "(as tahoe put; it fixes the file's cap, so guard it as the cap and never use it twice)")

    g = command(groups, "get", "download a file from the grid (to LOCAL_FILE or stdout)", """\
  shoal get tahoe:photo.jpg photo.jpg # to a local file
  shoal get URI:CHK:... | less        # to stdout
  shoal get work:docs/report.pdf ./   # into a local directory""", cmd_get)
    g.add_argument("remote", metavar="REMOTE_FILE", help="alias:path or a file cap")
    g.add_argument("local", nargs="?", default="-", metavar="LOCAL_FILE", help="destination ('-' or none: stdout)")


def put_target(ctx: Context, remote: str | None) -> str:
    """The web API path a `put` sends to."""
    if remote is None:
        return "uri"
    if remote.startswith(MUTABLE_CAP_PREFIXES):
        return cap_url(remote)
    where = resolve(ctx.aliases, remote)
    assert where is not None
    if where.path.startswith("/"):
        raise UsageError(f"the remote file name must not start with a slash; try {remote.replace('/', '', 1)!r}")
    if not where.path.strip("/"):
        raise UsageError(f"{remote!r} names a directory: give the file a name, e.g. {remote.rstrip('/')}/NAME")
    return cap_url(where.cap, where.path)


def upload(client: WebClient, path: str, source: BinaryIO, size: int | None, label: str,
           query: dict[str, str] | None = None) -> str:
    """Stream `source` to PUT `path`; the cap the node answers."""
    with Transfer(f"put {label}", size) as progress:
        resp = client.request("PUT", path, query, body=source, length=size, progress=progress)
        return resp.text()


def load_private_key(path: str) -> str:
    """The private-key= value for a PEM key file (Tahoe's tahoe_put.load_private_key: urlsafe
    base64 of the PKCS#8 DER); UsageError naming the file if it is not a 2048-bit RSA key."""
    try:
        with open(os.path.expanduser(path), "rb") as f:
            pem = f.read(64 * 1024)
        key = rsa.private_key_from_der(pem)
    except OSError as e:
        raise UsageError(f"--private-key-path {path}: {e.strerror}") from None
    except rsa.BadKeyError as e:
        raise UsageError(f"--private-key-path {path}: {str(e).split(':')[0]}") from None
    return base64.urlsafe_b64encode(rsa.private_key_to_der(key)).decode("ascii")


def cmd_put(ctx: Context, args: argparse.Namespace) -> int:
    query = {}
    if args.format:
        query["format"] = args.format
    elif args.mutable:
        query["mutable"] = "true"
    if args.private_key_path is not None:
        if not (args.mutable or args.format in ("SDMF", "MDMF")):
            raise UsageError("--private-key-path is for mutable files only: add --mutable or --format=SDMF|MDMF")
        if args.remote is not None and args.remote.startswith(MUTABLE_CAP_PREFIXES):
            raise UsageError("--private-key-path makes a new file: it cannot go with an existing file's cap")
        query["private-key"] = load_private_key(args.private_key_path)
    path = put_target(ctx, args.remote)
    if args.local == "-":
        if sys.stdin.isatty():
            ctx.err("reading the file from stdin (end it with Ctrl-D) ...")
        cap = upload(ctx.client, path, sys.stdin.buffer, None, "stdin", query)
    else:
        with open(args.local, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            cap = upload(ctx.client, path, f, size, os.path.basename(args.local), query)
    ctx.out(cap)
    return 0


def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    where = resolve(ctx.aliases, args.remote)
    assert where is not None
    label = where.name or args.remote
    dest = args.local
    if dest != "-" and os.path.isdir(dest):
        if not where.name:
            raise UsageError(f"{args.remote!r} has no name to save it under in {dest}: give a file name")
        problem = local_name_problem(where.name)
        if problem is not None:
            raise UsageError(f"cannot save {args.remote!r} under its name in {dest}: {problem}; give a file name")
        dest = os.path.join(dest, where.name)
    resp = ctx.client.request("GET", cap_url(where.cap, where.path))
    if dest == "-":
        out = sys.stdout.buffer
        with Transfer(f"get {label}", resp.length) as progress:
            for chunk in resp.chunks():
                out.write(chunk)
                progress(len(chunk))
        out.flush()
    else:
        with Transfer(f"get {label}", resp.length) as progress:
            resp.save(dest, progress)
    return 0
