"""A slow HTTP client over a real socket, for the minimum body rate (protocol.body_rate)
of any port: `trickle` sends a request's head, then its body at a given rate, and
reports whether the server closed the connection before the body was done.

`connect` makes the socket, so a TLS port (the storage HTTP port) passes a function
that wraps it. Used by tests/integration/test_slow_body.py."""

import socket
import ssl
import time
from collections.abc import Callable

import attrs


@attrs.frozen
class Trickled:
    cut: bool  # the server closed (or reset) the connection before the whole body was sent
    sent: int  # body bytes sent
    seconds: float  # from the end of the head to the cut or to the answer
    answer: bytes  # what the server answered (b"" when it only closed)


def trickle(connect: Callable[[], socket.socket], head: bytes, body: bytes, rate: float,
            chunk: int = 1, answer_timeout: float = 30) -> Trickled:
    """Send `head`, then `body` in `chunk`-byte pieces at `rate` bytes per second (paced
    from the start, so a late send catches up); then read the answer."""
    sock = connect()
    sock.settimeout(answer_timeout)
    try:
        sock.sendall(head)
        start = time.monotonic()
        sent = 0
        while sent < len(body):
            due = start + sent / rate
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            try:
                sock.sendall(body[sent:sent + chunk])
            except OSError:
                return Trickled(True, sent, time.monotonic() - start, b"")
            sent += min(chunk, len(body) - sent)
            if chunk == 1 and _closed(sock):
                return Trickled(True, sent, time.monotonic() - start, b"")
        answer = _read_all(sock)
        return Trickled(not answer, sent, time.monotonic() - start, answer)
    finally:
        sock.close()


def _closed(sock: socket.socket) -> bool:
    """Whether the peer closed: a readable socket that gives b"" or an error. A TLS socket
    cannot peek; for it a cut shows as the next send failing."""
    if isinstance(sock, ssl.SSLSocket):
        return False
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _read_all(sock: socket.socket) -> bytes:
    """The answer up to its end (Content-Length) or the connection's close."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and len(rest) >= int(value):
                        return data
    except OSError:
        pass
    return data
