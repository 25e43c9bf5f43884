"""The welcome page says which protocol carries each server's connection."""

from shoal.web.welcome import SERVER_KEYS, WelcomeSource, welcome_html, welcome_json


def server(name: str, protocol: str | None) -> dict:
    return {"nodeid": f"v0-{name}", "connection_status": "Connected to x via y", "available_space": 10,
            "nickname": name, "version": "tahoe-lafs/1.20.0", "last_received_data": 1.0, "connected": True,
            "protocol": protocol}


SOURCE = WelcomeSource("v0-me", "me", lambda: [],
                       lambda: [server("a", "HTTP"), server("b", "Foolscap"), server("c", None)], "shoal/x")


def test_json_has_tahoes_keys_and_the_protocol():
    servers = welcome_json(SOURCE)["servers"]
    assert [set(s) for s in servers] == [{*SERVER_KEYS, "protocol"}] * 3
    assert [s["protocol"] for s in servers] == ["HTTP", "Foolscap", None]


def test_html_has_a_protocol_column():
    page = welcome_html(SOURCE)
    assert "<th>Protocol</th>" in page
    assert "<td>HTTP</td>" in page and "<td>Foolscap</td>" in page


def test_the_helper_connection_is_shown_as_tahoe_shows_it():
    assert welcome_json(SOURCE)["helper"] == {"furl": None, "connected": "not-configured"}
    assert "not configured" in welcome_html(SOURCE)
    status = {"furl": "pb://abc@tcp:127.0.0.1:1/[censored]", "connected": "no", "active_uploads": 2}
    with_helper = WelcomeSource("v0-me", "me", lambda: [], lambda: [], "shoal/x", helper_status=lambda: status)
    assert welcome_json(with_helper)["helper"] == status
    page = welcome_html(with_helper)
    assert "not connected" in page and "2 active uploads" in page
