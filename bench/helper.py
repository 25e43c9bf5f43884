"""Uploads over a slow uplink: direct (3-of-10) against a shoal helper and a Tahoe 1.20 helper.

One shoal grid on 127.0.0.1: an introducer and 7 storage nodes whose
announced addresses (tub.location, so also their HTTPS NURLs) are
userspace relays (shoal.testing.tcp_relay) sharing one token-bucket Limiter: the
client's uplink, `--rate` MiB/s. Each client's link to its helper goes
through a relay on the same Limiter. The helpers reach the storage servers
directly (private/servers.yaml with the real ports, no introducer): a
helper sits on a well-connected machine. Three shoal clients, 3-of-10,
happy 7, each upload `--size` MiB of fresh random data:

- direct: the client pushes all 10 shares (~10/3 of the size) over the uplink;
- shoal helper: the client sends the ciphertext once to a shoal [helper] node;
- Tahoe helper: the same through a Tahoe 1.20 helper node (skipped without .venv-peer).

Prints, per client, the bytes that crossed the uplink (counted at the relays),
their ratio to the file size, and the wall time of the PUT.

    python bench/helper.py [--size 64] [--rate 10] [--no-tahoe]
"""

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

from shoal.testing.grid import Grid, shares_args, wait_for_servers, web_json
from shoal.testing.processes import NodeProcess, create, set_config, start_node, stop_all
from shoal.testing.tcp_relay import Limiter, Relay, add_relayed_storage, free_port, relay_furl
from shoal.testing.wait import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer" / "bin"
MiB = 1024 * 1024
K, HAPPY, N = 3, 7, 10
STORAGE_NODES = 7


def put(url: str, data: bytes) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read().decode().strip()


def direct_furl(furl: str, port: int) -> str:
    return relay_furl(furl, port)


class Bench:
    def __init__(self, base: str, rate: float, tahoe: bool) -> None:
        self.base = base
        self.limiter = Limiter(None)  # unlimited while the grid comes up
        self.rate = rate
        self.grid = Grid(base)
        self.relays: list[Relay] = []
        self.nodes: list[NodeProcess] = []
        self.tahoe_procs: list[subprocess.Popen] = []
        self.grid.start_introducer()
        self.servers: dict[str, dict] = {}
        for i in range(STORAGE_NODES):
            _, relay, real = add_relayed_storage(self.grid, f"storage{i + 1}", self.limiter)
            self.relays.append(relay)
            d = pathlib.Path(base) / f"storage{i + 1}"
            server_id = (d / "node.pubkey").read_text().strip().removeprefix("pub-")
            storage_furl = (d / "private" / "storage.furl").read_text().strip()
            ann = {"anonymous-storage-FURL": direct_furl(storage_furl, real), "nickname": f"storage{i + 1}",
                   "permutation-seed-base32": (d / "permutation-seed").read_text().strip()}
            self.servers[server_id] = {"ann": ann}
        self.shoal_helper = self._shoal_helper()
        self.tahoe_helper_furl = self._tahoe_helper() if tahoe else None

    def _servers_yaml(self, nodedir: pathlib.Path) -> None:
        (nodedir / "private").mkdir(exist_ok=True)
        (nodedir / "private" / "servers.yaml").write_text(yaml.safe_dump({"storage": self.servers}))

    def _shoal_helper(self) -> NodeProcess:
        d = pathlib.Path(self.base) / "shelper"
        create("create-node", "--hostname", "127.0.0.1", "--webport", "tcp:0:interface=127.0.0.1", "--no-storage",
               "--nickname", "shelper", str(d))
        set_config(str(d), "helper", "enabled", "true")
        self._servers_yaml(d)
        node = start_node(str(d))
        self.nodes.append(node)
        wait_for_servers(node.web_url, STORAGE_NODES, timeout=120)
        return node

    def _tahoe_helper(self) -> str:
        d = pathlib.Path(self.base) / "thelper"
        subprocess.run([str(PEER / "tahoe"), "create-node", "--hostname", "127.0.0.1", "--webport",
                        f"tcp:{free_port()}:interface=127.0.0.1", "--no-storage", "--helper", "--nickname",
                        "thelper", str(d)], check=True, capture_output=True)
        self._servers_yaml(d)
        self.tahoe_procs.append(subprocess.Popen([str(PEER / "tahoe"), "run", str(d)], stdin=subprocess.PIPE,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        furl_file = d / "private" / "helper.furl"
        wait_until(furl_file.exists, 90, "the Tahoe helper's FURL")
        wait_until(lambda: (d / "node.url").exists(), 90, "the Tahoe helper's web port")
        wait_for_servers((d / "node.url").read_text().strip(), STORAGE_NODES, timeout=120)
        return furl_file.read_text().strip()

    def helper_relay(self, furl: str) -> str:
        port = int(furl.split("@", 1)[1].split("/")[0].split(",")[0].split(":")[2])
        relay = Relay(port, limiter=self.limiter)
        self.relays.append(relay)
        return relay_furl(furl, relay.port)

    def client(self, name: str, helper_furl: str | None) -> NodeProcess:
        config = {("client", "helper.furl"): self.helper_relay(helper_furl)} if helper_furl else {}
        node = self.grid.add_client(name, *shares_args(K, HAPPY, N), config=config, servers=STORAGE_NODES)
        if helper_furl:
            wait_until(lambda: web_json(node.web_url)["helper"]["connected"] == "yes", 60, f"{name}'s helper")
        return node

    def uplink(self) -> int:
        return sum(r.up for r in self.relays)

    def run(self, name: str, node: NodeProcess, size: int) -> tuple[int, float]:
        data = os.urandom(size)
        self.limiter.rate = self.rate
        before, started = self.uplink(), time.monotonic()
        try:
            put(node.web_url, data)
        finally:
            self.limiter.rate = None
        return self.uplink() - before, time.monotonic() - started

    def stop(self) -> None:
        stop_all([*self.nodes])
        for p in self.tahoe_procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.tahoe_procs:
            p.wait(30)
        self.grid.stop()
        for r in self.relays:
            r.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="MiB per upload")
    ap.add_argument("--rate", type=float, default=10.0, help="the client's uplink, MiB/s")
    ap.add_argument("--no-tahoe", action="store_true", help="skip the Tahoe 1.20 helper")
    args = ap.parse_args()
    tahoe = not args.no_tahoe and (PEER / "tahoe").exists()
    size = args.size * MiB
    with tempfile.TemporaryDirectory(prefix="shoal-bench-helper-") as base:
        bench = Bench(base, args.rate * MiB, tahoe)
        try:
            runs = [("direct", bench.client("direct", None)),
                    ("shoal helper", bench.client("via-shoal", bench.shoal_helper.read_private("helper.furl")))]
            if bench.tahoe_helper_furl:
                runs.append(("Tahoe 1.20 helper", bench.client("via-tahoe", bench.tahoe_helper_furl)))
            print(f"{args.size} MiB upload, 3-of-10 (happy 7), client uplink {args.rate:g} MiB/s "
                  f"(userspace relays, one token bucket)")
            print(f"{'path':<20}{'uplink MiB':>12}{'x size':>9}{'seconds':>10}{'MiB/s':>9}")
            for name, node in runs:
                sent, took = bench.run(name, node, size)
                print(f"{name:<20}{sent / MiB:>12.1f}{sent / size:>9.2f}{took:>10.1f}{args.size / took:>9.2f}",
                      flush=True)
        finally:
            bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
