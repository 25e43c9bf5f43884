"""`shoal debug ...`: grid-free tools over the pure core.

encode   file -> cap (and share files as a storage server keeps their data)
decode   share files + cap -> plaintext, validating every byte
dump-cap cap -> its fields
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from shoal.caps import CHKCap, CHKVerifierCap, LiteralCap, parse_cap
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.errors import Fault, ShoalError
from shoal.immutable.decoder import FileIdentity
from shoal.immutable.encoder import ImmutableEncoder
from shoal.immutable.local_decode import decode_segments
from shoal.immutable.params import LIT_THRESHOLD, EncodingParams, FileShape

READ_CHUNK = 1024 * 1024


class UsageError(ShoalError):
    """The command line is wrong."""

    fault = Fault.CALLER


def register(groups: argparse._SubParsersAction) -> None:
    debug = groups.add_parser("debug", help="grid-free debugging tools")
    sub = debug.add_subparsers(dest="debug_command", metavar="SUBCOMMAND", required=True)

    enc = sub.add_parser("encode", help="encode a file into shares; print its cap")
    enc.add_argument("--needed", type=int, default=3, help="k: shares needed (default 3)")
    enc.add_argument("--happy", type=int, default=7, help="servers of happiness (default 7)")
    enc.add_argument("--total", type=int, default=10, help="n: shares in all (default 10)")
    enc.add_argument("--convergence-secret-file", required=True, help="file holding the raw secret bytes")
    enc.add_argument("--max-segment-size", type=int, default=1048576)
    enc.add_argument("--shares-dir", help="write each share's data to DIR/<shnum>")
    enc.add_argument("file", help="file to encode ('-' for stdin)")
    enc.set_defaults(func=cmd_encode)

    dec = sub.add_parser("decode", help="decode share files back to plaintext on stdout")
    dec.add_argument("--shares-dir", required=True)
    dec.add_argument("cap")
    dec.set_defaults(func=cmd_decode)

    dump = sub.add_parser("dump-cap", help="print the fields of a cap")
    dump.add_argument("cap")
    dump.set_defaults(func=cmd_dump_cap)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(READ_CHUNK):
        yield chunk


def cmd_encode(args: argparse.Namespace) -> int:
    params = EncodingParams(args.needed, args.happy, args.total, args.max_segment_size)
    with open(args.convergence_secret_file, "rb") as f:
        secret = f.read()
    spool = None
    path = args.file
    if path == "-":
        spool = tempfile.NamedTemporaryFile(prefix="shoal-encode-", delete=False)
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.close()
        path = spool.name
    try:
        cap = encode_file(path, params, secret, args.shares_dir)
    finally:
        if spool is not None:
            os.unlink(spool.name)
    print(cap)
    return 0


def encode_file(path: str, params: EncodingParams, secret: bytes, shares_dir: str | None) -> str:
    size = os.path.getsize(path)
    if size <= LIT_THRESHOLD:
        with open(path, "rb") as f:
            return LiteralCap(f.read()).to_string()
    shape = FileShape(size=size, k=params.k, n=params.n, segment_size=params.segment_size_for(size))
    with open(path, "rb") as f:
        key = convergent_key(_chunks(f), secret, shape.k, shape.n, shape.segment_size)
    encoder = ImmutableEncoder(key, shape)
    outs: list[BinaryIO] = []
    if shares_dir is not None:
        os.makedirs(shares_dir, exist_ok=True)
        outs = [open(os.path.join(shares_dir, str(sh)), "wb") for sh in range(shape.n)]
    try:
        for out in outs:
            out.write(encoder.header)
        with open(path, "rb") as f:
            for chunk in _chunks(f):
                for seg in encoder.feed(chunk):
                    for out, block in zip(outs, seg.blocks, strict=False):
                        out.write(block)
        result = encoder.finish()
        for out, trailer in zip(outs, result.trailers, strict=False):
            out.write(trailer)
    finally:
        for out in outs:
            out.close()
    return CHKCap(key, result.ueb_hash, shape.k, shape.n, size).to_string()


def _share_sources(shares_dir: str, stack: contextlib.ExitStack) -> dict:
    """{shnum: (path, read)} for every file named by a share number."""
    sources = {}
    for name in sorted(os.listdir(shares_dir)):
        if name.isdigit():
            path = os.path.join(shares_dir, name)
            f = stack.enter_context(open(path, "rb"))
            sources[int(name)] = (path, _reader(f))
    return sources


def _reader(f: BinaryIO):
    def read(offset: int, length: int) -> bytes:
        f.seek(offset)
        return f.read(length)

    return read


def cmd_decode(args: argparse.Namespace) -> int:
    cap = parse_cap(args.cap)
    out = sys.stdout.buffer
    if isinstance(cap, LiteralCap):
        out.write(cap.data)
        return 0
    if not isinstance(cap, CHKCap):
        raise UsageError(f"debug decode takes a CHK or LIT cap, not {type(cap).__name__}")
    if not os.path.isdir(args.shares_dir):
        raise UsageError(f"no such shares directory: {args.shares_dir}")
    identity = FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, cap.key)
    with contextlib.ExitStack() as stack:
        found = _share_sources(args.shares_dir, stack)
        sources = {sh: src for sh, src in found.items() if sh < cap.total}
        for segment in decode_segments(identity, sources):
            out.write(segment)
    out.flush()
    return 0


def cmd_dump_cap(args: argparse.Namespace) -> int:
    cap = parse_cap(args.cap)
    lines = [("kind", type(cap).__name__)]
    if isinstance(cap, LiteralCap):
        lines += [("size", str(len(cap.data))), ("data", repr(cap.data))]
    elif isinstance(cap, CHKCap | CHKVerifierCap):
        if isinstance(cap, CHKCap):
            lines.append(("key", b2a(cap.key)))
        lines += [
            ("storage index", b2a(cap.storage_index)),
            ("UEB hash", b2a(cap.ueb_hash)),
            ("k (needed)", str(cap.needed)),
            ("n (total)", str(cap.total)),
            ("size", str(cap.size)),
        ]
    else:
        for field in ("writekey", "readkey", "fingerprint"):
            value = getattr(cap, field, None)
            if isinstance(value, bytes):
                lines.append((field, b2a(value)))
        si = getattr(cap, "storage_index", None)
        if isinstance(si, bytes):
            lines.append(("storage index", b2a(si)))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k + ':':<{width + 1}} {v}")
    return 0
