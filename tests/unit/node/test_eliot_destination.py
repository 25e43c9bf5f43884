"""--eliot-destination: Tahoe 1.20's description syntax and messages, and the log it writes."""

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.python import log

from shoal.node.eliot_log import (
    DEFAULT_MAX_ROTATED_FILES,
    DEFAULT_ROTATE_LENGTH,
    EliotDestinationError,
    EliotLogging,
    FileDestinationSpec,
    parse_destination,
)
from shoal.testing.wait import wait_until

CAP = "URI:CHK:nqox2gd77r2dix4bg64axnee5a:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq:3:10:1000"


def test_file_with_defaults():
    assert parse_destination("file:/tmp/x/eliot.json") == FileDestinationSpec(
        "/tmp/x/eliot.json", DEFAULT_ROTATE_LENGTH, DEFAULT_MAX_ROTATED_FILES)
    assert DEFAULT_ROTATE_LENGTH == 1024 ** 3 and DEFAULT_MAX_ROTATED_FILES == 10  # Tahoe's defaults


def test_file_with_rotation():
    spec = parse_destination("file:logs/e.json,rotate_length=1000,max_rotated_files=3")
    assert (spec.path, spec.rotate_length, spec.max_rotated_files) == ("logs/e.json", 1000, 3)


@pytest.mark.parametrize("text,message", [
    ("invalid", "Eliot destination description must be formatted like <kind>:<args>."),
    ("invalid:more", "Unknown destination description: invalid:more"),
    ("file:@foo", "Unsupported escape character (@) in destination text ('@foo')."),
    ("file:", "needs a path"),
    ("file:x,rotate_length=-1", "rotate_length must be a positive integer"),
    ("file:x,max_rotated_files=many", "max_rotated_files must be a positive integer"),
    ("file:x,colour=blue", "unknown file option"),
])
def test_bad_descriptions_say_what_tahoe_says(text, message):
    with pytest.raises(EliotDestinationError) as e:
        parse_destination(text)
    assert message in str(e.value)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        spec = parse_destination(text)
    except EliotDestinationError:
        return
    assert text.startswith("file:") and "@" not in text and spec.path and spec.rotate_length >= 1


@given(st.text(alphabet=st.characters(blacklist_characters=",@\x00"), min_size=1, max_size=30),
       st.integers(1, 10 ** 12), st.integers(1, 1000))
def test_round_trip(path, length, count):
    spec = parse_destination(f"file:{path},rotate_length={length},max_rotated_files={count}")
    assert spec == FileDestinationSpec(path, length, count)


def test_twisted_events_become_eliot_twisted_messages_without_caps(tmp_path):
    path = tmp_path / "logs" / "eliot.json"  # the directory is made, as Tahoe makes it
    service = EliotLogging([parse_destination(f"file:{path}")], reactor)
    service.startService()
    try:
        log.msg("client running")
        log.msg(f"uploaded {CAP}")
        lines = wait_until(lambda: _messages(path) if len(_messages(path)) >= 2 else None, 20,
                           "two eliot messages in the file")
    finally:
        service.stopService()
    texts = [m.get("log_text") or " ".join(m.get("message", [])) for m in lines]
    assert all(m["message_type"] == "eliot:twisted" for m in lines)
    assert all("timestamp" in m and "task_uuid" in m for m in lines)
    assert "client running" in texts
    assert not any("2yoxr6of6amzb7xr" in json.dumps(m) for m in lines)
    assert any("URI:[CENSORED]" in t for t in texts)


def test_stopped_service_stops_relaying(tmp_path):
    path = tmp_path / "eliot.json"
    service = EliotLogging([parse_destination(f"file:{path}")], reactor)
    service.startService()
    log.msg("before stop")
    wait_until(lambda: _messages(path), 20, "the first message")
    service.stopService()
    log.msg("after stop")
    assert not any("after stop" in json.dumps(m) for m in _messages(path))


def _messages(path) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().splitlines() if line.endswith("}")]
