"""`shoal --version`: shoal's version and its key libraries' versions, as installed."""

from importlib import metadata

import pytest

from shoal import __version__
from shoal.main import main
from shoal.versions import KEY_DISTRIBUTIONS, versions


def test_version_lists_shoal_and_every_key_library(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"shoal {__version__}"
    shown = dict(line.split(None, 1) for line in lines[1:])
    for name in KEY_DISTRIBUTIONS:
        assert shown[name] == metadata.version(name)
    assert shown["twisted"] and shown["foolscap"] and shown["zfec"]


def test_a_missing_library_is_named_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shoal.versions.KEY_DISTRIBUTIONS", ("no-such-distribution-shoal",))
    assert versions()[-1] == ("no-such-distribution-shoal", "not installed")
