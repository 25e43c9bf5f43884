"""storage_connector chooses as Tahoe 1.20 does: HTTPS when the announcement has NURLs
and [client]force_foolscap is not set; Foolscap otherwise."""

import time

from twisted.internet import task

from shoal.grid.foolscap_client import FoolscapConnection
from shoal.grid.http_connection import HttpConnection
from shoal.grid.storage_broker import GridServer, storage_connector
from shoal.grid.storage_client import Deadlines
from shoal.protocol.announcement import storage_announcement

FURL = "pb://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tcp:127.0.0.1:1234/swiss"
NURL = "pb://gJeL9kmUqSyJQNyCa5-qVlOqdeBkwt2sySy3lZCQQHA@127.0.0.1:1234/swiss#v=1"
SEED = "a" * 52


def server(nurls) -> GridServer:
    return GridServer(b"v0-" + b"a" * 52, storage_announcement(FURL, SEED, nurls=nurls), static=False,
                      clock=time.time)


def test_nurls_mean_https():
    conn = storage_connector(object())(server([NURL]), Deadlines(), task.Clock())
    assert isinstance(conn, HttpConnection) and conn.protocol == "HTTP"


def test_force_foolscap_or_no_nurls_mean_foolscap():
    connect_forced = storage_connector(object(), force_foolscap=True)
    assert isinstance(connect_forced(server([NURL]), Deadlines(), task.Clock()), FoolscapConnection)
    connect = storage_connector(object())
    assert isinstance(connect(server(None), Deadlines(), task.Clock()), FoolscapConnection)


def test_unusable_nurls_are_ignored():
    s = server(["pb+tor://abc@x.onion:1/s#v=1", "not a nurl", NURL])
    assert s.nurls == (NURL,)
    assert server(["pb+tor://abc@x.onion:1/s#v=1"]).nurls == ()
