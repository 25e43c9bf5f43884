"""One large file through the SFTP frontend, both ways, with both real clients.

A grid of node processes on this machine (an introducer, --storage-nodes storage
nodes, a client node with [sftpd]; 3-of-5, happy 4), then for each client
(paramiko's SFTPClient put/get and OpenSSH's sftp in batch mode) a --mib MiB
file is put (timed until the close returns, which is when the upload to the grid
has finished and the file is linked) and got back (timed to the last byte, which
is compared).

    python bench/sftp.py [--mib 100] [--storage-nodes 5]
"""

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import paramiko  # noqa: E402

from shoal.testing.grid import shares_args, start_grid, wait_for_servers  # noqa: E402
from shoal.testing.processes import start_node  # noqa: E402
from shoal.testing.sftp import free_port, make_sftp_node, write_keypair  # noqa: E402
from tests.integration.test_web import request  # noqa: E402


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--storage-nodes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        grid = start_grid(base, storage_nodes=args.storage_nodes, client_args=shares_args(3, 4, 5))
        try:
            rootcap = request(grid.client_url, "POST", "/uri?t=mkdir").text
            key = os.path.join(base, "user_key")
            line = write_keypair(key, "bench")
            port = free_port()
            nodedir = os.path.join(base, "sftp-client")
            make_sftp_node(nodedir, grid.introducer_furl, port, f"bench {line} {rootcap}\n", *shares_args(3, 4, 5))
            node = start_node(nodedir)
            grid.clients.append(node)
            wait_for_servers(node.web_url, args.storage_nodes)
            local = os.path.join(base, "big.bin")
            with open(local, "wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(1 << 20))
            want = digest(local)
            # OpenSSH gets other bytes: the same file again would find its shares already placed
            local2 = os.path.join(base, "big2.bin")
            with open(local2, "wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(1 << 20))
            want2 = digest(local2)
            size = args.mib << 20
            figures: dict[str, float] = {}

            transport = paramiko.Transport(("127.0.0.1", port))
            transport.connect(pkey=paramiko.Ed25519Key.from_private_key_file(key), username="bench")
            c = paramiko.SFTPClient.from_transport(transport)
            t = time.monotonic()
            c.put(local, "/p.bin", confirm=True)
            figures["paramiko_put_s"] = time.monotonic() - t
            back = os.path.join(base, "p.back")
            t = time.monotonic()
            c.get("/p.bin", back)
            figures["paramiko_get_s"] = time.monotonic() - t
            assert digest(back) == want, "paramiko: the bytes read back differ"
            c.close()

            sftp = shutil.which("sftp")
            if sftp is not None:
                cmd = [sftp, "-b", "-", "-P", str(port), "-o", "StrictHostKeyChecking=no",
                       "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", key, "bench@127.0.0.1"]
                t = time.monotonic()
                subprocess.run(cmd, input=f"put {local2} /o.bin\n".encode(), check=True, capture_output=True)
                figures["openssh_put_s"] = time.monotonic() - t
                back = os.path.join(base, "o.back")
                t = time.monotonic()
                subprocess.run(cmd, input=f"get /o.bin {back}\n".encode(), check=True, capture_output=True)
                figures["openssh_get_s"] = time.monotonic() - t
                assert digest(back) == want2, "OpenSSH: the bytes read back differ"
            for name in list(figures):
                figures[name.replace("_s", "_MiB_per_s")] = round(size / (1 << 20) / figures[name], 2)
                figures[name] = round(figures[name], 2)
            print(json.dumps({"mib": args.mib, "storage_nodes": args.storage_nodes, **figures}, indent=2))
        finally:
            grid.stop()


if __name__ == "__main__":
    main()
