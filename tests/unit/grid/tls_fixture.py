"""A scripted HTTPS server on 127.0.0.1 for transport tests: self-signed certificate,
one thread per connection, each connection handled by the test's function."""

import base64
import datetime
import hashlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def spki_hash(der: bytes) -> bytes:
    """RFC 7469 style, as Tahoe's NURLs carry it: unpadded url-safe base64 of SHA-256(SPKI)."""
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=")


def self_signed(expired: bool = False) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal-test")])
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=10 if expired else 1)
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=10)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


class ConnReader:
    """Reads one HTTP/1.1 request at a time from a server-side TLS socket (enough for tests)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def head(self) -> tuple[bytes, bytes, dict[bytes, bytes]] | None:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.split(b"\r\n")
        method, target, _ = lines[0].split(b" ", 2)
        headers = {}
        for line in lines[1:]:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
        return method, target, headers

    def body(self, length: int) -> bytes:
        while len(self.buf) < length:
            if not self._fill():
                break
        out, self.buf = self.buf[:length], self.buf[length:]
        return out


def respond(sock: ssl.SSLSocket, status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    sock.sendall(head.encode() + b"\r\n" + body)


class TlsServer:
    """Accepts connections; handler(sock, reader) runs per connection in its own thread."""

    def __init__(
        self, handler: Callable[[ssl.SSLSocket, ConnReader], None], expired: bool = False, port: int = 0,
        identity: tuple[bytes, bytes] | None = None,
    ) -> None:
        cert, key = identity or self_signed(expired)
        self.identity = (cert, key)
        with tempfile.NamedTemporaryFile(suffix=".pem") as f:
            f.write(cert + key)
            f.flush()
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(f.name)
        self.spki = spki_hash(ssl.PEM_cert_to_DER_cert(cert.decode()))
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.accepted = 0
        self.received_after_handshake: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._stopped = False
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    def _loop(self) -> None:
        while not self._stopped:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        self._socks.append(sock)
        try:
            self.handler(sock, ConnReader(sock))
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        self._stopped = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self._accept.join(10)
        for s in self._socks:
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(10)


def keep_alive(route: Callable[[bytes, bytes, dict[bytes, bytes], bytes, ssl.SSLSocket], bool]) -> Callable[
    [ssl.SSLSocket, ConnReader], None
]:
    """A handler serving requests in turn until route returns False or the client closes."""

    def handler(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        while True:
            got = reader.head()
            if got is None:
                return
            method, target, headers = got
            body = reader.body(int(headers.get(b"content-length", b"0")))
            if not route(method, target, headers, body, sock):
                return

    return handler
