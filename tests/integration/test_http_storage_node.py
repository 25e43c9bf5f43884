"""Real node processes: HTTPS beside Foolscap on the Tub's port, the announced NURL, force_foolscap."""

import base64
import os
import socket
import ssl
import stat
import time

import cbor2
import pytest

from shoal.introducer.files import cache_filename, read_cache
from shoal.protocol.http_bodies import decode_version
from shoal.protocol.nurl import Nurl, spki_hash
from shoal.testing.grid import Grid
from shoal.testing.processes import set_config, shoal_command, start_node
from shoal.testing.sync_storage import foolscap_storage


def tub_port(nodedir: str) -> int:
    with open(os.path.join(nodedir, "tahoe.cfg"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("tub.port"):
                return int(line.split(":")[-1])
    raise AssertionError("no tub.port")


def https_request(port: int, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]] = (),
                  body: bytes | None = None) -> tuple[bytes, int, dict[bytes, bytes], bytes]:
    """(peer certificate DER, status, headers, body) of one HTTPS request with stdlib ssl."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # pinned by SPKI hash by the caller, as Tahoe's client pins it
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
        tls.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, answer = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    answer_headers = {k.lower(): v for k, v in (line.split(b": ", 1) for line in header_lines)}
    return der, int(status_line.split(b" ")[1]), answer_headers, answer


def auth_header(swissnum: bytes) -> tuple[bytes, bytes]:
    return (b"Authorization", b"Tahoe-LAFS " + base64.b64encode(swissnum))


def https_get(port: int, path: bytes, swissnum: bytes | None) -> tuple[bytes, int, bytes, bytes]:
    """(peer certificate DER, status, Content-Type, body) of one HTTPS GET."""
    headers = [] if swissnum is None else [auth_header(swissnum)]
    der, status, answer_headers, body = https_request(port, b"GET", path, headers)
    return der, status, answer_headers.get(b"content-type", b""), body


def announcements(client_dir: str, count: int, timeout: float = 60) -> dict[str, dict]:
    """nickname -> storage announcement, from a client's introducer cache."""
    path = os.path.join(client_dir, "private", cache_filename("default"))
    deadline = time.monotonic() + timeout
    while True:
        found = {ann["nickname"]: ann for _, ann in read_cache(path) if ann.get("service-name") == "storage"}
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {sorted(found)} announced"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    g = Grid(str(tmp_path_factory.mktemp("httpgrid")))
    try:
        g.start_introducer()
        g.add_storage("https")
        plain = os.path.join(g.base, "plain")
        shoal_command("create-node", "--hostname", "127.0.0.1", "--webport", "none", "--nickname", "plain",
                      "--introducer", g.introducer_furl, plain)
        set_config(plain, "storage", "force_foolscap", "true")
        g.storage.append(start_node(plain))
        g.start_client("client")
        yield g
    finally:
        g.stop()


def test_https_and_foolscap_answer_on_the_tub_port(grid):
    node = grid.storage[0]
    port = tub_port(node.nodedir)
    furl = node.read_private("storage.furl")
    swissnum = furl.rsplit("/", 1)[1].encode()
    assert f":{port}/" in furl
    der, status, content_type, body = https_get(port, b"/storage/v1/version", swissnum)
    assert status == 200 and content_type == b"application/cbor"
    assert decode_version(body).application_version.startswith(b"shoal/")
    with open(node.private("node.pem"), "rb") as f:
        assert spki_hash(der) == spki_hash(f.read())  # TLS with the Tub's own certificate
    assert https_get(port, b"/storage/v1/version", b"wrong")[1] == 401
    assert https_get(port, b"/storage/v1/version", None)[1] == 401
    # Foolscap still works on the same port
    remote = foolscap_storage(furl)
    try:
        assert remote.get_version()[b"application-version"].startswith(b"shoal/")
    finally:
        remote.close()
    assert stat.S_IMODE(os.stat(node.private("node.pem")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(node.private("storage.furl")).st_mode) == 0o600
    assert cbor2.loads(body)  # plain CBOR for any client


def test_the_announced_nurl_is_the_tub_port_key_and_swissnum(grid):
    anns = announcements(grid.client.nodedir, 2)
    node = grid.storage[0]
    (text,) = anns["https"]["anonymous-storage-NURLs"]
    nurl = Nurl.parse(text)
    with open(node.private("node.pem"), "rb") as f:
        assert nurl.spki_hash == spki_hash(f.read())
    furl = node.read_private("storage.furl")
    assert anns["https"]["anonymous-storage-FURL"] == furl
    assert (nurl.host, nurl.port, nurl.swissnum) == ("127.0.0.1", tub_port(node.nodedir), furl.rsplit("/", 1)[1])


def test_force_foolscap_announces_no_nurl_and_takes_no_tls(grid):
    anns = announcements(grid.client.nodedir, 2)
    assert "anonymous-storage-NURLs" not in anns["plain"]
    port = tub_port(grid.storage[1].nodedir)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(port, b"/storage/v1/version", b"x")
    remote = foolscap_storage(grid.storage[1].read_private("storage.furl"))
    try:
        assert remote.get_version()
    finally:
        remote.close()


def _read_until_closed(sock: socket.socket) -> bytes:
    """What the server sends before it closes ``sock`` (TimeoutError if it does not close it)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_garbage_and_stalled_tls_clients_are_cut_and_do_not_block_others(grid):
    node = grid.storage[0]
    port = tub_port(node.nodedir)
    swissnum = node.read_private("storage.furl").rsplit("/", 1)[1].encode()
    stalled = socket.create_connection(("127.0.0.1", port), timeout=20)
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start, then nothing
    with socket.create_connection(("127.0.0.1", port), timeout=10) as garbage:
        garbage.sendall(b"\x16\x03\x01\x00\x05" + os.urandom(4096))  # a TLS record header, then noise
        answer = _read_until_closed(garbage)  # cut well before the 30 s handshake timeout
        assert len(answer) < 100  # at most a TLS alert
    # the server still answers while the stalled handshake is pending
    assert https_get(port, b"/storage/v1/version", swissnum)[1] == 200
    stalled.close()
