"""Foolscap connection hints (the part of a FURL between ``@`` and ``/``, and
``[node]tub.location``), checked as Foolscap 23 and Tahoe 1.20 read them.

A location is a comma-separated list of hints. Foolscap knows:

* ``tcp:HOST:PORT`` where HOST is a DNS name, a dotted quad or a bracketed
  IPv6 address (``tcp:[::1]:3457``);
* the legacy implicit form ``HOST:PORT`` (HOST a DNS name or dotted quad);
* ``tor:HOST:PORT`` and ``i2p:ADDR`` / ``i2p:ADDR:PORT``;
* any other ``TYPE:REST`` (TYPE alphanumeric, REST without ``,`` or ``/``),
  which a Foolscap that lacks the handler ignores.

Tahoe adds ``AUTO`` in ``tub.location`` (replaced by the node's local
addresses). Ports are 1..65535. Everything else -- an empty hint, ``tcp:``,
``foo``, ``tcp:host:notaport`` -- is refused with a reason that names the
hint (hints are not secret; a FURL's swissnum never reaches this module).
"""

import re

__all__ = ["AUTO", "HintError", "check_hint", "parse_furl_hints", "parse_location"]

AUTO = "AUTO"
MAX_HINTS = 64
MAX_HINT_LENGTH = 1024

_QUAD = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_IPV6 = r"\[[A-Fa-f0-9:]+(?:" + _QUAD + r"|%[a-zA-Z0-9.]+)?\]"
_DNS = r"[A-Za-z.0-9\-]+"
_PORT = r"(\d{1,5})"
_TCP = re.compile(rf"tcp:({_QUAD}|{_IPV6}|{_DNS}):{_PORT}", re.ASCII)
_LEGACY = re.compile(rf"({_QUAD}|{_DNS}):{_PORT}", re.ASCII)
_TOR = re.compile(rf"tor:({_QUAD}|{_DNS}):{_PORT}", re.ASCII)
_I2P = re.compile(rf"i2p:({_DNS})(?::{_PORT})?", re.ASCII)
_OTHER = re.compile(r"([A-Za-z0-9]+):([^,/\s]+)", re.ASCII)
_TUBID = re.compile(r"[a-z2-7]{32}", re.ASCII)


class HintError(ValueError):
    """A connection hint or location Foolscap could not use; the text says which and why."""


def _check_port(text: str | None, hint: str) -> None:
    if text is not None and not 1 <= int(text) <= 65535:
        raise HintError(f"hint {hint!r}: port {text} is not in 1..65535")


def check_hint(hint: str, *, allow_auto: bool = False) -> None:
    """Refuse (HintError) a hint Foolscap cannot parse; return None for a usable one."""
    if not hint:
        raise HintError("empty hint (two commas in a row, or a trailing comma?)")
    if len(hint) > MAX_HINT_LENGTH:
        raise HintError(f"a hint is longer than {MAX_HINT_LENGTH} characters")
    if hint == AUTO:
        if allow_auto:
            return
        raise HintError("AUTO is only meaningful in tub.location")
    kind = hint.split(":", 1)[0].lower()
    grammar = {"tcp": _TCP, "tor": _TOR, "i2p": _I2P}.get(kind)
    if grammar is not None:
        m = grammar.fullmatch(hint)
        if m is None:
            shapes = {"tcp": "tcp:HOST:PORT", "tor": "tor:HOST:PORT", "i2p": "i2p:ADDR[:PORT]"}
            raise HintError(f"hint {hint!r} is not {shapes[kind]}")
        _check_port(m.group(2), hint)
        return
    m = _LEGACY.fullmatch(hint)
    if m is not None:
        _check_port(m.group(2), hint)
        return
    if _OTHER.fullmatch(hint) is None:
        raise HintError(f"hint {hint!r} is not TYPE:... (e.g. tcp:HOST:PORT)")


def parse_location(text: str, *, allow_auto: bool = True) -> list[str]:
    """The hints of a comma-separated location (``tub.location``), each checked."""
    hints = [part.strip() for part in text.strip().split(",")]
    if len(hints) > MAX_HINTS:
        raise HintError(f"more than {MAX_HINTS} hints")
    for hint in hints:
        check_hint(hint, allow_auto=allow_auto)
    return hints


def parse_furl_hints(furl: str) -> list[str]:
    """The hints of ``pb://TUBID@HINTS/SWISSNUM``, each checked (the swissnum is never quoted back)."""
    if not furl.startswith("pb://") or "@" not in furl or "/" not in furl[5:]:
        raise HintError("not a pb://TUBID@HINTS/SWISSNUM FURL")
    tubid, rest = furl[5:].split("@", 1)
    hints_text, swissnum = rest.split("/", 1)
    if _TUBID.fullmatch(tubid) is None:
        raise HintError("the FURL's tub id is not 32 base32 characters")
    if not swissnum:
        raise HintError("the FURL has no swissnum")
    if not hints_text.strip():
        raise HintError("the FURL has no connection hints")
    return parse_location(hints_text, allow_auto=False)
