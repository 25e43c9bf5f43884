"""Connection summaries in Tahoe 1.20's words."""

from types import SimpleNamespace

from shoal.protocol.connection_status import from_reconnection_info, unstarted


def _ci(**kw: object) -> SimpleNamespace:
    base = dict(connectorStatuses={}, connectionHandlers={}, winningHint=None,
                listenerStatus=(None, None), establishedAt=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_unstarted() -> None:
    assert from_reconnection_info(SimpleNamespace(state="unstarted"), None, 0.0) == unstarted()
    assert unstarted().summary == "unstarted" and not unstarted().connected


def test_connected_via_hint() -> None:
    ci = _ci(
        connectorStatuses={"tcp:a:1": "successful", "tcp:b:2": "ConnectionRefusedError"},
        connectionHandlers={"tcp:a:1": "tcp", "tcp:b:2": "tcp"},
        winningHint="tcp:a:1", establishedAt=50.0,
    )
    cs = from_reconnection_info(SimpleNamespace(state="connected", connectionInfo=ci), 60.0, 100.0)
    assert cs.connected and cs.summary == "Connected to tcp:a:1 via tcp"
    assert cs.non_connected_statuses == {"tcp:b:2 via tcp": "ConnectionRefusedError"}
    assert (cs.last_connection_time, cs.last_received_time) == (50.0, 60.0)


def test_connected_via_listener() -> None:
    ci = _ci(listenerStatus=("Listener on tcp:1", "successful"), establishedAt=5.0)
    cs = from_reconnection_info(SimpleNamespace(state="connected", connectionInfo=ci), None, 10.0)
    assert cs.summary == "Connected via listener (Listener on tcp:1)"


def test_connecting_and_waiting() -> None:
    cs = from_reconnection_info(SimpleNamespace(state="connecting", connectionInfo=_ci()), None, 0.0)
    assert cs.summary == "Trying to connect" and not cs.connected
    info = SimpleNamespace(state="waiting", connectionInfo=_ci(), lastAttempt=90.0, nextAttempt=112.5)
    cs = from_reconnection_info(info, None, 100.0)
    assert cs.summary == "Reconnecting in 12 seconds (last attempt 10s ago)"
