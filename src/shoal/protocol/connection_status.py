"""One-line connection summaries in Tahoe-LAFS 1.20's words, from a Foolscap Reconnector's info.

Tahoe's welcome page (and its `?t=json` "connection_status" and
"introducers.statuses") shows, per reconnecting connection, one of:

    "unstarted"
    "Connected to <hint> via <handler>"      (or "Connected via listener (<status>)")
    "Trying to connect"
    "Reconnecting in <n> seconds (last attempt <m>s ago)"

Pure: it reads the attributes of foolscap.reconnector.ReconnectionInfo and
foolscap.info.ConnectionInfo and is given the current time.
"""

from typing import Any

import attr


@attr.s(frozen=True, auto_attribs=True)
class ConnectionStatus:
    connected: bool
    summary: str
    # hint (with " via <handler>") -> status text, for the hints that did not win
    non_connected_statuses: dict[str, str]
    last_connection_time: float | None
    last_received_time: float | None


def unstarted() -> ConnectionStatus:
    return ConnectionStatus(False, "unstarted", {}, None, None)


def from_reconnection_info(info: Any, last_received: float | None, now: float) -> ConnectionStatus:
    """Summarize a Reconnector.getReconnectionInfo() result."""
    state = info.state
    if state == "unstarted":
        return unstarted()
    ci = info.connectionInfo
    statuses: dict[str, Any] = dict(ci.connectorStatuses) if ci is not None else {}
    handlers: dict[str, Any] = dict(ci.connectionHandlers) if ci is not None else {}
    connected = False
    last_connected = None
    if state == "connected":
        connected = True
        if ci is not None and ci.winningHint:
            statuses.pop(ci.winningHint, None)
            summary = f"Connected to {ci.winningHint} via {handlers.get(ci.winningHint)}"
        else:
            listener = ci.listenerStatus[0] if ci is not None else None
            summary = f"Connected via listener ({listener})"
        last_connected = ci.establishedAt if ci is not None else None
    elif state == "connecting":
        summary = "Trying to connect"
    elif state == "waiting":
        delay = (info.nextAttempt or now) - now
        elapsed = now - (info.lastAttempt or now)
        summary = "Reconnecting in %d seconds (last attempt %ds ago)" % (delay, elapsed)
    else:
        summary = str(state)
    others = {}
    for hint, status in statuses.items():
        handler = handlers.get(hint)
        label = f"{hint} via {handler}" if handler else str(hint)
        others[label] = str(status)
    return ConnectionStatus(connected, summary, others, last_connected, last_received)
