"""The node commands and global options as Tahoe 1.20's `tahoe` takes them: --eliot-destination,
--help-eliot-destinations, the wormhole options, -q, create-node --helper / --join, the
readiness line, bare web.port numbers."""

import configparser
import logging
import re

import pytest
from twisted.python import log

from shoal.main import build_parser, main
from shoal.node.config import load_config
from shoal.node.eliot_log import FileDestinationSpec
from shoal.node.logs import LOG_FILE
from shoal.node.run import readiness_line


def test_eliot_destination_is_a_global_option_given_any_number_of_times(tmp_path):
    args = build_parser().parse_args(["--eliot-destination", f"file:{tmp_path}/a.json",
                                      "--eliot-destination=file:-", "run", str(tmp_path)])
    assert args.eliot_destinations == [FileDestinationSpec(f"{tmp_path}/a.json"), FileDestinationSpec("-")]
    assert build_parser().parse_args(["run", "x"]).eliot_destinations == []


@pytest.mark.parametrize("text,message", [
    ("invalid:more", "Unknown destination description: invalid:more"),
    ("invalid", "must be formatted like"),
    ("file:@foo", "Unsupported escape character"),
])
def test_bad_eliot_destination_is_a_usage_error(text, message, capsys):
    with pytest.raises(SystemExit) as e:
        main([f"--eliot-destination={text}", "run", "."])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_eliot_destinations(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help-eliot-destinations"])
    assert e.value.code == 0
    assert "\tfile:<path>" in capsys.readouterr().out


def test_wormhole_options_are_accepted(tmp_path, capsys):
    rc = main(["--wormhole-server", "ws://127.0.0.1:1/v1", "--wormhole-invite-appid", "x/invite",
               "create-node", "--hostname", "127.0.0.1", str(tmp_path / "n")])
    assert rc == 0 and (tmp_path / "n" / "tahoe.cfg").exists()


def test_join_is_refused_in_one_line(tmp_path, capsys):
    rc = main(["create-client", "--join", "1-purple-sausages", str(tmp_path / "n")])
    err = capsys.readouterr().err
    assert rc == 1 and "--join" in err and "not supported" in err and err.count("\n") == 1
    assert not (tmp_path / "n" / "tahoe.cfg").exists()


def _cfg(path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read(path / "tahoe.cfg")
    return parser


@pytest.mark.parametrize("flags,enabled", [(["--helper"], "true"), ([], "false")])
def test_create_node_helper(tmp_path, flags, enabled):
    assert main(["create-node", "--hostname", "127.0.0.1", *flags, str(tmp_path / "n")]) == 0
    assert _cfg(tmp_path / "n").get("helper", "enabled") == enabled
    load_config(str(tmp_path / "n"))  # shoal reads what it wrote


def test_create_client_has_no_helper_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["create-client", "--helper", str(tmp_path / "n")])
    assert e.value.code == 2


def test_quiet_silences_create_node(tmp_path, capsys):
    assert main(["--quiet", "create-node", "--hostname", "127.0.0.1", str(tmp_path / "n")]) == 0
    assert capsys.readouterr().out == ""
    assert main(["create-node", "--hostname", "127.0.0.1", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "Node created in" in out and "Please set [node]nickname=" in out


def test_readiness_line_is_twistd_style():
    assert readiness_line("client", 0) == "1970-01-01T00:00:00+0000 [-] client running"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 \[-\] introducer running",
                        readiness_line("introducer"))


def test_bare_web_port_number_means_tcp(tmp_path):
    assert main(["create-node", "--hostname", "127.0.0.1", "--webport", "0", str(tmp_path / "n")]) == 0
    config = load_config(str(tmp_path / "n"))
    assert config.get_endpoints("node", "web.port") == ["tcp:0"]


@pytest.mark.parametrize("argv,expected", [
    (["run", "a"], "a"),
    (["run", "-C", "b"], "b"),
    (["run", "--basedir", "b", "a"], "a"),
    (["-d", "c", "run"], "c"),
    (["run"], "."),
])
def test_run_finds_its_node_directory_as_tahoe(argv, expected, monkeypatch):
    seen = []
    monkeypatch.setattr("shoal.node.run.run_node", lambda nodedir, *rest: seen.append(nodedir) or 0)
    assert main(argv) == 0 and seen == [expected]


def test_unwritable_eliot_destination_is_one_line_and_frees_the_pidfile(tmp_path, capsys):
    assert main(["create-node", "--hostname", "127.0.0.1", "--webport", "none", str(tmp_path / "n")]) == 0
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = main(["--eliot-destination", f"file:{blocker}/sub/eliot.json", "run", str(tmp_path / "n")])
    err = capsys.readouterr().err
    assert rc == 1 and "--eliot-destination" in err and err.count("\n") == 1
    assert not (tmp_path / "n" / "running.process").exists()


def test_run_in_process_leaves_no_global_log_observer_or_handler(tmp_path, capsys):
    """run_node's logging (Twisted observer, root handler, root level) is undone when it returns."""
    assert main(["create-node", "--hostname", "127.0.0.1", "--webport", "none", str(tmp_path / "n")]) == 0
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")  # the run fails after its logging has started
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    assert main(["--eliot-destination", f"file:{blocker}/sub/eliot.json", "run", str(tmp_path / "n")]) == 1
    assert root.level == level and root.handlers == handlers
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.DEBUG)
    catcher.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("twisted").addHandler(catcher)
    try:
        log.msg("after the run: no observer of it relays this")
    finally:
        logging.getLogger("twisted").removeHandler(catcher)
    assert seen == []
    with open(tmp_path / "n" / LOG_FILE, encoding="utf-8") as f:
        assert "after the run" not in f.read()
