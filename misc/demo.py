"""`make run` until the grid arrives: a debug round trip on a sample file.

Makes a 3 MiB sample, encodes it 3-of-10 into share files with
`shoal debug encode`, deletes 7 shares and corrupts nothing else, decodes
from the 3 left with `shoal debug decode`, and checks the bytes.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def run(*args: str) -> bytes:
    return subprocess.run([sys.executable, "-m", "shoal.main", *args], check=True, capture_output=True).stdout


def main() -> int:
    work = tempfile.mkdtemp(prefix="shoal-demo-")
    try:
        sample = os.path.join(work, "sample.bin")
        secret = os.path.join(work, "convergence")
        shares = os.path.join(work, "shares")
        with open(sample, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024))
        with open(secret, "wb") as f:
            f.write(os.urandom(32))
        cap = run("debug", "encode", "--needed", "3", "--happy", "7", "--total", "10",
                  "--convergence-secret-file", secret, "--shares-dir", shares, sample).decode().strip()
        print(f"encoded {sample} (3 MiB) into 10 shares: {cap}")
        print(run("debug", "dump-cap", cap).decode(), end="")
        for sh in (0, 2, 3, 5, 6, 8, 9):
            os.unlink(os.path.join(shares, str(sh)))
        print("deleted shares 0 2 3 5 6 8 9; decoding from 1 4 7 ...")
        out = run("debug", "decode", "--shares-dir", shares, cap)
        with open(sample, "rb") as f:
            original = f.read()
        ok = out == original
        print(f"decoded {len(out)} bytes, sha256 {hashlib.sha256(out).hexdigest()[:16]}: "
              f"{'identical' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
