"""Client cost of the HTTPS transport: shoal's (h11 over stdlib ssl on I/O threads) against
Tahoe-LAFS 1.20's (treq over twisted.web and pyOpenSSL), on loopback.

Starts a lean TLS server in a subprocess (blocking stdlib ssl, one thread per
connection: it reads and drops request bodies and answers small), then runs
each client in a process of its own and reads that process's CPU time:

  bulk:  PATCH requests of 1 MiB bodies, 4 in flight  -> client CPU seconds per GB
  read:  GET requests answered with 1 MiB, 4 in flight -> client CPU seconds per GB
  small: GET requests one after another, 16-byte answers -> wall and CPU microseconds each

The Tahoe client runs under the reference peer's interpreter (.venv-peer, where
treq and pyOpenSSL live); it is skipped when that is missing.

    python bench/transport.py [--mib 256] [--small 2000]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1024 * 1024
HERE = os.path.abspath(__file__)
PEER_PYTHON = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".venv-peer", "bin", "python")


# -- the server (subprocess) -----------------------------------------------------------


def _certificate() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=")


_BIG = os.urandom(MiB)


def _serve_connection(sock: ssl.SSLSocket) -> None:
    buf = bytearray()
    sink = bytearray(MiB)
    while True:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end]).lower()
        del buf[:end]
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        take = min(length, len(buf))
        del buf[:take]
        length -= take
        while length:
            n = sock.recv_into(sink, min(length, len(sink)))
            if not n:
                return
            length -= n
        body = _BIG if head.startswith(b"get /big") else b"0123456789abcdef"
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %d\r\n\r\n"
                     % len(body))
        sock.sendall(body)


def serve() -> None:
    pem, spki = _certificate()
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(pem)
        f.flush()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f.name)
    listener = socket.create_server(("127.0.0.1", 0))
    print(json.dumps({"port": listener.getsockname()[1], "spki": spki.decode()}), flush=True)

    def one(raw: socket.socket) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            with ctx.wrap_socket(raw, server_side=True) as sock:
                _serve_connection(sock)
        except (OSError, ssl.SSLError):
            pass

    threading.Thread(target=lambda: sys.stdin.read() or os._exit(0), daemon=True).start()
    while True:
        raw, _ = listener.accept()
        threading.Thread(target=one, args=(raw,), daemon=True).start()


# -- clients (each in a process of its own) -----------------------------------------------------


def _figures(bulk_cpu: float, bulk_wall: float, nbytes: int, small_wall: float, small_cpu: float, n: int,
             read_cpu: float) -> dict:
    return {
        "bulk_cpu_s_per_gb": bulk_cpu / (nbytes / 1e9),
        "read_cpu_s_per_gb": read_cpu / (nbytes / 1e9),
        "bulk_mb_s": nbytes / bulk_wall / 1e6,
        "small_wall_us": small_wall / n * 1e6,
        "small_cpu_us": small_cpu / n * 1e6,
    }


def client_shoal(port: int, spki: bytes, mib: int, small: int) -> None:
    from twisted.internet import defer, reactor, task

    from shoal.grid.https_pool import Request, ServerPool
    from shoal.grid.io_threads import Lane, io_threads

    def spki_hash(der: bytes) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        key = x509.load_der_x509_certificate(der).public_key()
        spki_der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.urlsafe_b64encode(hashlib.sha256(spki_der).digest()).rstrip(b"=")

    pool = ServerPool("127.0.0.1", port, spki, spki_hash)
    lane = Lane(io_threads(reactor), limit=4)
    chunk = memoryview(os.urandom(MiB))

    async def run() -> None:
        def call(req: Request):
            return lane.run(lambda flight: pool.request(req, flight))

        await call(Request(b"GET", b"/warm"))
        c0, t0 = time.process_time(), time.perf_counter()
        sem = defer.DeferredSemaphore(4)
        await defer.gatherResults([
            sem.run(call, Request(b"PATCH", b"/storage/v1/immutable/x/0", [(b"content-range", b"bytes 0-1/2")],
                                  [chunk]))
            for _ in range(mib)
        ])
        bulk_cpu, bulk_wall = time.process_time() - c0, time.perf_counter() - t0
        c0 = time.process_time()
        await defer.gatherResults([sem.run(call, Request(b"GET", b"/big", max_body=MiB)) for _ in range(mib)])
        read_cpu = time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(small):
            await call(Request(b"GET", b"/storage/v1/version", [(b"authorization", b"Tahoe-LAFS eA==")]))
        figures = _figures(bulk_cpu, bulk_wall, mib * MiB, time.perf_counter() - t0, time.process_time() - c0, small,
                           read_cpu)
        print(json.dumps(figures), flush=True)

    task.react(lambda _: defer.ensureDeferred(run()))


def client_treq(port: int, spki: bytes, mib: int, small: int) -> None:
    # Tahoe 1.20's own client stack: its pinning policy, twisted.web's Agent, treq
    from allmydata.storage.http_client import _StorageClientHTTPSPolicy
    from treq.client import HTTPClient
    from twisted.internet import defer, reactor, task
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = 10
    http = HTTPClient(Agent(reactor, _StorageClientHTTPSPolicy(expected_spki_hash=spki), pool=pool))
    url = f"https://127.0.0.1:{port}"
    chunk = os.urandom(MiB)

    async def run() -> None:
        async def call(method: str, path: str, data: bytes | None = None) -> bytes:
            r = await http.request(method, url + path, data=data,
                                   headers={"authorization": ["Tahoe-LAFS eA=="]})
            return await r.content()

        await call("GET", "/warm")
        c0, t0 = time.process_time(), time.perf_counter()
        sem = defer.DeferredSemaphore(4)
        await defer.gatherResults([
            sem.run(lambda: defer.ensureDeferred(call("PATCH", "/storage/v1/immutable/x/0", chunk)))
            for _ in range(mib)
        ])
        bulk_cpu, bulk_wall = time.process_time() - c0, time.perf_counter() - t0
        c0 = time.process_time()
        await defer.gatherResults([sem.run(lambda: defer.ensureDeferred(call("GET", "/big"))) for _ in range(mib)])
        read_cpu = time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(small):
            await call("GET", "/storage/v1/version")
        figures = _figures(bulk_cpu, bulk_wall, mib * MiB, time.perf_counter() - t0, time.process_time() - c0, small,
                           read_cpu)
        await pool.closeCachedConnections()
        print(json.dumps(figures), flush=True)

    task.react(lambda _: defer.ensureDeferred(run()))


# -- driver --------------------------------------------------------------------------


def run_client(python: str, kind: str, server: dict, args: argparse.Namespace) -> dict | None:
    env = dict(os.environ)
    if kind == "shoal":
        env["PYTHONPATH"] = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")
    proc = subprocess.run(
        [python, HERE, "--client", kind, "--port", str(server["port"]), "--spki", server["spki"],
         "--mib", str(args.mib), "--small", str(args.small)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    if proc.returncode != 0:
        print(f"{kind} client failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=256, help="MiB sent in 1 MiB PATCHes")
    p.add_argument("--small", type=int, default=2000, help="small requests, one after another")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--client", choices=("shoal", "treq"), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--spki", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve()
        return
    if args.client:
        client = client_shoal if args.client == "shoal" else client_treq
        client(args.port, args.spki.encode(), args.mib, args.small)  # prints its figures as JSON
        return

    server_proc = subprocess.Popen([sys.executable, HERE, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
    try:
        assert server_proc.stdout is not None
        server = json.loads(server_proc.stdout.readline())
        rows = [("shoal: h11 + stdlib ssl, I/O threads", run_client(sys.executable, "shoal", server, args))]
        if os.path.exists(PEER_PYTHON):
            rows.append(("Tahoe 1.20: treq + pyOpenSSL", run_client(PEER_PYTHON, "treq", server, args)))
        else:
            print("(no .venv-peer: Tahoe's client stack not measured)")
        print(f"{args.mib} x 1 MiB PATCH and GET (4 in flight), {args.small} small GETs in sequence, loopback")
        print(f"{'client':40} {'PATCH CPU s/GB':>14} {'MB/s':>6} {'GET CPU s/GB':>12} {'small µs':>9} "
              f"{'small CPU µs':>13}")
        for name, f in rows:
            if f is None:
                print(f"{name:40} failed")
                continue
            print(f"{name:40} {f['bulk_cpu_s_per_gb']:14.2f} {f['bulk_mb_s']:6.0f} {f['read_cpu_s_per_gb']:12.2f} "
                  f"{f['small_wall_us']:9.0f} {f['small_cpu_us']:13.0f}")
    finally:
        if server_proc.stdin:
            server_proc.stdin.close()
        server_proc.wait(10)


if __name__ == "__main__":
    main()
