"""The `shoal` command line itself: --help with an example everywhere, exit codes
(0 ok, 1 failed, 2 usage), and one-line errors without tracebacks."""


import pytest

from shoal.main import main
from shoal.testing.ports import free_port

GRID_COMMANDS = ["put", "get", "ls", "mkdir", "cp", "mv", "ln", "unlink", "create-alias", "add-alias",
                 "list-aliases", "check", "deep-check", "manifest", "stats", "status", "backup", "webopen"]
DIR = "URI:DIR2:nqox2gd77r2dix4bg64axnee5a:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq"


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"  # outside the ephemeral range: nobody takes it meanwhile


@pytest.mark.parametrize("command", GRID_COMMANDS)
def test_every_command_has_help_with_an_example_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and f"shoal {command}" in text.split("example:")[1]
    assert "exit status:" in text and "2  usage" in text
    assert "--node-directory" in text


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in GRID_COMMANDS:
        assert command in text


def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["put", "--format=XYZ", "f"])
    assert e.value.code == 2
    capsys.readouterr()
    assert main(["-d", str(tmp_path), "ls", "nope:"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown alias 'nope'" in err
    assert main(["-d", str(tmp_path), "add-alias", "bad:name", DIR]) == 2
    assert main(["-d", str(tmp_path), "add-alias", "x", "URI:CHK:not:a:dir"]) == 2
    assert main(["-d", str(tmp_path / "nonode"), "put", __file__]) == 2
    assert "no node.url" in capsys.readouterr().err
    assert main(["--node-url", "ftp://example/", "ls", DIR]) == 2
    assert "http://HOST:PORT/" in capsys.readouterr().err


def test_both_positions_of_global_options(tmp_path, capsys):
    assert main(["add-alias", "-d", str(tmp_path), "work", DIR]) == 0
    assert main(["-d", str(tmp_path), "list-aliases"]) == 0
    assert capsys.readouterr().out == f"work: {DIR}\n"


def test_unreachable_node_is_one_line_exit_1(tmp_path, capsys):
    assert main(["--node-url", closed_port_url(), "put", __file__]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the node" in err and "Traceback" not in err


def test_missing_local_file_exit_1(tmp_path, capsys):
    assert main(["--node-url", closed_port_url(), "put", str(tmp_path / "absent")]) == 1
    assert "No such file or directory" in capsys.readouterr().err



@pytest.mark.parametrize("name", ["..", "."])
def test_get_into_a_directory_refuses_a_name_that_is_not_one_component(tmp_path, capsys, name):
    """issue #15: the remote name becomes a local path only when it is one path component."""
    dest = tmp_path / "in" / "dest"
    dest.mkdir(parents=True)
    assert main(["-d", str(tmp_path), "get", f"{DIR}/sub/{name}", str(dest)]) == 2
    err = capsys.readouterr().err
    assert f"{name!r} is not a name" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dest", "in"]
