"""A probe for the namespace links, run inside a host by the tests.

`pinger.py serve ADDR PORT`: echo every byte back. `pinger.py ping ADDR PORT`:
connect, then for each line on stdin ("N" bytes) send N bytes, wait for all of
them to come back and print the seconds it took (or "error: ..." ).
"""

import socket
import socketserver
import sys
import time


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def serve(addr: str, port: int) -> None:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer((addr, port), Echo) as server:
        print("ready", flush=True)
        server.serve_forever()


def ping(addr: str, port: int) -> None:
    sock = socket.create_connection((addr, port), timeout=10)
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        start = time.monotonic()
        try:
            sock.sendall(b"x" * n)
            got = 0
            while got < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError("closed")
                got += len(chunk)
            print(f"{time.monotonic() - start:.6f}", flush=True)
        except (OSError, EOFError) as e:
            print(f"error: {e}", flush=True)


if __name__ == "__main__":
    {"serve": serve, "ping": ping}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
