"""The minimum request-body rate on a real client node's web port and blob port
(`[node]web.min_body_rate`, `[blobs]min_body_rate`, issue #15): a body trickled one
byte at a time is cut after its first window while the node keeps serving others,
and an upload at a realistic 64 KiB/s is not cut. The windows are 2 s here so the
test is quick; the defaults (1 KiB/s over 30 s) are in docs/security.md."""

import os
import socket
import threading
import time
import urllib.parse
import urllib.request

import pytest

from shoal.apps.blobs import token_header
from shoal.testing.grid import shares_args
from shoal.testing.slow_body import trickle
from shoal.testing.wait import wait_until
from tests.integration.test_blobs import TOKENS

WINDOW = 2
RATE = "16KiB"


@pytest.fixture(scope="module")
def node(shared_grid):
    config = {("node", "web.min_body_rate"): RATE, ("node", "web.body_rate_window"): str(WINDOW),
              ("blobs", "enabled"): "true", ("blobs", "port"): "tcp:0:interface=127.0.0.1",
              ("blobs", "min_body_rate"): RATE, ("blobs", "body_rate_window"): str(WINDOW)}
    client = shared_grid.add_client("slowbody", *shares_args(2, 3, 3), config=config,
                                    files={os.path.join("private", "blobs.tokens"):
                                           "".join(f"{u}:{t}\n" for u, t in TOKENS.items())})
    wait_until(lambda: os.path.exists(client.private("blobs.url")), 10, "private/blobs.url")
    with open(client.private("blobs.url")) as f:
        blob_url = f.read().strip()
    with open(os.path.join(client.nodedir, "node.url")) as f:
        web_url = f.read().strip()
    yield client, web_url, blob_url
    client.stop()


def connector(url: str):
    parts = urllib.parse.urlsplit(url)
    return lambda: socket.create_connection((parts.hostname, parts.port), timeout=30)


def heads(web_url: str, blob_url: str, size: int) -> dict[str, tuple]:
    auth = token_header("alice", TOKENS["alice"]).encode()
    return {
        "web": (connector(web_url), b"PUT /uri HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size),
        "blob": (connector(blob_url), b"PUT /blobs/alice/slow%d HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                                      b"Content-Length: %d\r\n\r\n" % (size, auth, size)),
    }


def healthy(url: str) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        r.read()
    return time.monotonic() - start


@pytest.mark.parametrize("port", ["web", "blob"])
def test_a_body_one_byte_at_a_time_is_cut_and_others_are_served(node, port):
    _, web_url, blob_url = node
    connect, head = heads(web_url, blob_url, 100_000)[port]
    result: list = []
    slow = threading.Thread(target=lambda: result.append(trickle(connect, head, b"x" * 100_000, rate=2)))
    slow.start()
    try:
        for _ in range(3):  # while the slow body is held open, others are answered at once
            assert healthy(web_url + "?t=json" if port == "web" else blob_url) < 5
            time.sleep(0.3)
    finally:
        slow.join(60)
    [r] = result
    assert r.cut and not r.answer, r
    assert WINDOW - 0.5 <= r.seconds <= WINDOW + 4, r.seconds


@pytest.mark.parametrize("port", ["web", "blob"])
def test_an_upload_at_64_kib_per_second_is_not_cut(node, port):
    _, web_url, blob_url = node
    body = os.urandom(320 * 1024)  # 5 s at 64 KiB/s: two and a half windows
    connect, head = heads(web_url, blob_url, len(body))[port]
    r = trickle(connect, head, body, rate=64 * 1024, chunk=4096)
    assert not r.cut and r.sent == len(body), r
    status = int(r.answer.split(b" ", 2)[1])
    assert status in (200, 201), r.answer[:300]
    if port == "web":
        cap = r.answer.partition(b"\r\n\r\n")[2].decode()
        with urllib.request.urlopen(web_url + "uri/" + urllib.parse.quote(cap), timeout=30) as got:
            assert got.read() == body
