"""Throughput of shoal's pure immutable pipeline against its ceiling.

In one process: encode a file (default 256 MiB, 3-of-10, 1 MiB segments)
through convergent key + ImmutableEncoder, keeping k shares on disk; decode
them back through the validating decoder (once from the primary shares,
once from check shares so zfec really works); then time SHA-256,
AES-128-CTR and zfec alone on the same data. The ceiling is what the
pipeline's hashing, encryption and coding would cost with zero overhead.

    python bench/codec.py [--mib 256] [-k 3] [-n 10]
"""

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time

import zfec

from shoal.crypto.aes import AESCTR
from shoal.crypto.convergence import convergent_key
from shoal.immutable.decoder import FileIdentity
from shoal.immutable.encoder import ImmutableEncoder
from shoal.immutable.local_decode import decode_segments
from shoal.immutable.params import EncodingParams, FileShape

MiB = 1024 * 1024


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source(total: int, chunk: int = MiB):
    """Deterministic incompressible-ish plaintext without holding it all."""
    base = os.urandom(chunk)
    sent = 0
    i = 0
    while sent < total:
        piece = (i.to_bytes(8, "big") + base[8:])[: min(chunk, total - sent)]
        yield piece
        sent += len(piece)
        i += 1


def rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def time_raw(size: int, k: int, n: int, segsize: int) -> dict[str, float]:
    seg = os.urandom(segsize)
    reps = max(1, size // segsize)
    out = {}
    t = time.perf_counter()
    for _ in range(reps):
        hashlib.sha256(seg).digest()
    out["sha256"] = rate(reps * segsize, time.perf_counter() - t)
    aes = AESCTR(b"k" * 16)
    t = time.perf_counter()
    for _ in range(reps):
        aes.process(seg)
    out["aes128ctr"] = rate(reps * segsize, time.perf_counter() - t)
    bs = segsize // k
    enc = zfec.Encoder(k, n)
    pieces = [seg[i * bs : (i + 1) * bs] for i in range(k)]
    t = time.perf_counter()
    for _ in range(reps):
        blocks = enc.encode(pieces, list(range(n)))
    out["zfec_encode"] = rate(reps * segsize, time.perf_counter() - t)
    dec = zfec.Decoder(k, n)
    chosen = list(range(n - k, n))
    some = [blocks[i] for i in chosen]
    t = time.perf_counter()
    for _ in range(reps):
        dec.decode(some, chosen)
    out["zfec_decode"] = rate(reps * segsize, time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--segment", type=int, default=MiB)
    args = ap.parse_args()
    size = args.mib * MiB
    params = EncodingParams(args.k, 1, args.n, args.segment)
    shape = FileShape(size, args.k, args.n, params.segment_size_for(size))
    keep = sorted(set(range(args.k)) | set(range(args.n - args.k, args.n)))
    print(f"shoal bench/codec: {args.mib} MiB, {args.k}-of-{args.n}, segment {shape.segment_size} bytes")

    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        t0 = time.perf_counter()
        key = convergent_key(source(size), b"bench-secret", shape.k, shape.n, shape.segment_size)
        t1 = time.perf_counter()
        enc = ImmutableEncoder(key, shape)
        files = {sh: open(os.path.join(tmp, str(sh)), "wb") for sh in keep}
        for f in files.values():
            f.write(enc.header)
        for chunk in source(size):
            for seg in enc.feed(chunk):
                for sh, f in files.items():
                    f.write(seg.blocks[sh])
        result = enc.finish()
        for sh, f in files.items():
            f.write(result.trailers[sh])
            f.close()
        t2 = time.perf_counter()
        rss_enc = peak_rss_mib()
        print(f"encode: key pass {rate(size, t1 - t0):7.1f} MB/s, encode pass {rate(size, t2 - t1):7.1f} MB/s, "
              f"total {rate(size, t2 - t0):7.1f} MB/s; peak RSS {rss_enc:.0f} MiB")

        cap = result.cap
        ident = FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, cap.key)
        timings = {}
        for label, shares in (("primary", range(args.k)), ("check", range(args.n - args.k, args.n))):
            handles = {sh: open(os.path.join(tmp, str(sh)), "rb") for sh in shares}

            def reader(f):
                def read(off, length):
                    f.seek(off)
                    return f.read(length)
                return read

            sources = {sh: (str(sh), reader(f)) for sh, f in handles.items()}
            digest = hashlib.sha256()
            t = time.perf_counter()
            got = 0
            for seg in decode_segments(ident, sources):
                got += len(seg)
            timings[label] = time.perf_counter() - t
            for f in handles.values():
                f.close()
            assert got == size
            print(f"decode from {label} shares {list(shares)}: {rate(size, timings[label]):7.1f} MB/s; "
                  f"peak RSS {peak_rss_mib():.0f} MiB")
            del digest

    raw = time_raw(min(size, 64 * MiB), args.k, args.n, shape.segment_size)
    print("raw: " + ", ".join(f"{k} {v:.0f} MB/s" for k, v in raw.items()))
    expansion = args.n / args.k
    # seconds per MB of plaintext for each component of the pipeline
    enc_cost = (4 + expansion) / raw["sha256"] + 1 / raw["aes128ctr"] + 1 / raw["zfec_encode"]
    dec_cost = 2 / raw["sha256"] + 1 / raw["aes128ctr"] + 1 / raw["zfec_decode"]
    enc_ceiling, dec_ceiling = 1 / enc_cost, 1 / dec_cost
    enc_rate = rate(size, t2 - t0)
    dec_rate = rate(size, timings["check"])
    print(f"ceiling (one core, zero overhead): encode {enc_ceiling:.1f} MB/s "
          f"(sha256 x{4 + expansion:.2f}, aes x1, zfec x1), decode {dec_ceiling:.1f} MB/s "
          f"(sha256 x2, aes x1, zfec x1)")
    print(f"pipeline/ceiling: encode {100 * enc_rate / enc_ceiling:.0f}%, "
          f"decode {100 * dec_rate / dec_ceiling:.0f}% (from check shares)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
