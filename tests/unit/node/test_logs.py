"""The node's log (logs/shoal.log): JSON lines, levels, rotation, censoring; and `shoal log`."""

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import Logger

from shoal.caps.censor import censor_secrets
from shoal.main import main
from shoal.node.config import ConfigError, load_config
from shoal.node.log_command import readable
from shoal.node.logs import (
    LOG_FILE,
    LogSettings,
    TwistedToLogging,
    install,
    make_handler,
    uninstall,
)
from shoal.testing.wait import wait_until

CAP = "URI:CHK:x2ylb6kaxw5nbj4kwnt4g3wdny:7yzfw7qu3bfvhdxgdtf6udqvrg6q7fwz6t5wrfjomdbqo7bwzzbq:3:10:1234"
FURL = "pb://tubidtubidtubidtubidtubidtubi@tcp:127.0.0.1:4567/swissnumsecretswissnumsecret"


def _records(basedir: Path) -> list[dict]:
    with open(basedir / LOG_FILE, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """install() puts the node's handler on this process's root logger: take it off after each test."""
    level = logging.getLogger().level
    yield
    uninstall()
    logging.getLogger().setLevel(level)


def _twisted_log(basedir: Path, settings: LogSettings) -> Logger:
    install(settings, make_handler(str(basedir), settings))
    return Logger(namespace="shoal.test", observer=TwistedToLogging())


def test_stdlib_records_of_shoal_modules_reach_the_log(tmp_path: Path) -> None:
    install(LogSettings(), make_handler(str(tmp_path), LogSettings()))
    logging.getLogger("shoal.storage.quarantine").warning("quarantined %s: %s", "si/3", CAP)
    logging.getLogger("shoal.storage.server").debug("not at INFO")
    (record,) = _records(tmp_path)
    assert record["source"] == "shoal.storage.quarantine" and record["level"] == "WARNING"
    assert record["message"] == "quarantined si/3: URI:[CENSORED]"
    uninstall()
    logging.getLogger("shoal.storage.server").warning("after uninstall: not in the file")
    assert len(_records(tmp_path)) == 1


def test_events_are_json_lines_without_caps_or_furl_secrets(tmp_path: Path) -> None:
    log = _twisted_log(tmp_path, LogSettings())
    log.info("stored {cap} for {who}", cap=CAP, who="alice")
    try:
        raise ValueError(f"cannot reach {FURL} for %3A{CAP.replace(':', '%3A')}")
    except ValueError:
        log.failure("announcing to {furl}", furl=FURL)
    log.debug("not written at INFO")
    records = _records(tmp_path)
    assert [r["level"] for r in records] == ["INFO", "CRITICAL"]
    assert records[0]["source"] == "shoal.test"
    assert records[0]["message"] == "stored URI:[CENSORED] for alice"
    assert records[0]["time"].endswith("Z") and len(records[0]["time"]) == 24
    assert "ValueError: cannot reach" in records[1]["failure"]
    text = (tmp_path / LOG_FILE).read_text(encoding="utf-8")
    assert "swissnumsecret" not in text and "x2ylb6kaxw5nbj4kwnt4g3wdny" not in text
    assert "pb://tubidtubidtubidtubidtubidtubi@tcp:127.0.0.1:4567/[CENSORED]" in text
    assert os.stat(tmp_path / "logs").st_mode & 0o077 == 0


def test_level_chooses_what_is_written(tmp_path: Path) -> None:
    log = _twisted_log(tmp_path, LogSettings(level=logging.WARNING))
    log.info("quiet")
    log.warn("loud {n}", n=1)
    log.error("louder")
    assert [(r["level"], r["message"]) for r in _records(tmp_path)] == [("WARNING", "loud 1"), ("ERROR", "louder")]


def test_the_log_rotates_at_max_bytes_keeping_backups(tmp_path: Path) -> None:
    log = _twisted_log(tmp_path, LogSettings(max_bytes=4096, backups=2))
    for i in range(400):
        log.info("line {i} {pad}", i=i, pad="x" * 40)
    names = sorted(os.listdir(tmp_path / "logs"))
    assert names == ["shoal.log", "shoal.log.1", "shoal.log.2"]
    for name in names:
        assert os.path.getsize(tmp_path / "logs" / name) <= 4096
    assert _records(tmp_path)[-1]["message"].startswith("line 399 ")


def _config(tmp_path: Path, text: str):
    (tmp_path / "tahoe.cfg").write_text(text, encoding="utf-8")
    return load_config(str(tmp_path))


def test_logging_settings_from_tahoe_cfg(tmp_path: Path) -> None:
    assert LogSettings.from_config(_config(tmp_path, "[node]\n")) == LogSettings(
        level=logging.INFO, max_bytes=10 * 2**20, backups=5)
    settings = LogSettings.from_config(_config(tmp_path, "[logging]\nlevel = debug\nmax_bytes = 1M\nbackups = 2\n"))
    assert settings == LogSettings(level=logging.DEBUG, max_bytes=10**6, backups=2)


@pytest.mark.parametrize("line, message", [
    ("level = LOUD", r"\[logging\]level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"),
    ("max_bytes = 10x", r"\[logging\]max_bytes: unparseable size"),
    ("max_bytes = 100", r"\[logging\]max_bytes: 100 is under 4096"),
    ("backups = 0", r"\[logging\]backups: 0 is not from 1 to 1000"),
    ("backups = many", r"\[logging\]backups: 'many' is not an integer"),
])
def test_bad_logging_settings_name_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"tahoe.cfg: " + message):
        LogSettings.from_config(_config(tmp_path, f"[logging]\n{line}\n"))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=8, max_size=40),
       st.text(max_size=30), st.text(max_size=30))
def test_censor_secrets_hides_any_furl_swissnum(swissnum: str, before: str, after: str) -> None:
    text = f"{before} pb://abcdef@tcp:host:1/{swissnum} {after}"
    censored = censor_secrets(text)
    assert f"/{swissnum} " not in censored
    assert "pb://abcdef@tcp:host:1/[CENSORED]" in censored


# --- shoal log ---------------------------------------------------------------------------------

_JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=8)


@given(st.one_of(st.text(max_size=200), _JSONISH.map(json.dumps),
                 st.dictionaries(st.sampled_from(["time", "level", "source", "message", "failure"]), _JSONISH)
                 .map(json.dumps)))
def test_any_log_line_is_shown_without_an_error(raw: str) -> None:
    shown = readable(raw)
    assert isinstance(shown, str)
    record = None
    try:
        record = json.loads(raw)
    except ValueError:
        pass
    if not isinstance(record, dict):
        assert shown == raw  # not one of ours: shown as it is

def _write(basedir: Path, *messages: str, name: str = "shoal.log") -> None:
    os.makedirs(basedir / "logs", exist_ok=True)
    with open(basedir / "logs" / name, "a", encoding="utf-8") as f:
        for m in messages:
            f.write(json.dumps({"time": "2026-01-02T03:04:05.006Z", "level": "INFO", "source": "s",
                                "message": m}) + "\n")


def test_shoal_log_shows_the_last_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "one", "two", "three")
    with open(tmp_path / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": "t", "level": "ERROR", "source": "x", "message": "boom",
                            "failure": "Traceback\n  ValueError"}) + "\n")
    assert main(["log", "--no-follow", "--lines", "2", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "2026-01-02T03:04:05.006Z INFO    s: three\nt ERROR   x: boom\n    Traceback\n      ValueError\n")
    assert main(["log", "--no-follow", "--json", "-n", "1", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["message"] == "boom"


def test_shoal_log_without_a_log_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "--no-follow", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shoal: error: ") and "logs/shoal.log: no log yet" in err and err.count("\n") == 1
    assert main(["log", "--lines", "-1", str(tmp_path)]) == 2


def test_shoal_log_follows_across_rotation(tmp_path: Path) -> None:
    _write(tmp_path, "before")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "shoal.main", "log", "--lines", "1", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []

    def saw(word: str) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return any(line.rstrip().endswith(word) for line in seen)

    try:
        wait_until(lambda: saw("before"), 30, "the last line shown")
        _write(tmp_path, "appended")
        wait_until(lambda: saw("appended"), 30, "an appended line followed")
        os.replace(tmp_path / LOG_FILE, tmp_path / "logs" / "shoal.log.1")
        _write(tmp_path, "after rotation")
        wait_until(lambda: saw("after rotation"), 30, "the new file after rotation followed")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [line.split(": ", 1)[1].rstrip() for line in seen] == ["before", "appended", "after rotation"]
