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
