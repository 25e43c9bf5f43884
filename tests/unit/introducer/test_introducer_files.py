"""introducers.yaml, servers.yaml, the announcement cache and the seqnum file."""

import pathlib

import pytest
import yaml

from shoal.introducer.files import (
    FileSequencer,
    IntroducerConfigError,
    cache_filename,
    format_cache,
    load_introducers_yaml,
    load_servers_yaml,
    read_cache,
)

FURL = "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:8.8.8.8:51298/eiu2i7p6d6mm4ihmss7ieou5hac3wn6b"
KEY_S = "v0-4uazse3xb6uu5qpkb7tel2bm6bpea4jhuigdhqcuvvse7hugtsia"


def _write(tmp_path: pathlib.Path, text: str) -> str:
    p = tmp_path / "f.yaml"
    p.write_text(text)
    return str(p)


def test_introducers_yaml(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, f"introducers:\n  one:\n    furl: {FURL}\n  two:\n    furl: \"{FURL}2\"\n")
    assert load_introducers_yaml(path) == {"one": FURL, "two": FURL + "2"}
    assert load_introducers_yaml(str(tmp_path / "missing.yaml")) == {}
    assert load_introducers_yaml(_write(tmp_path, "introducers: {}\n")) == {}
    assert load_introducers_yaml(_write(tmp_path, "other: 1\n")) == {}


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("[1, 2]", "mapping"),
        ("introducers: [a]", "petnames"),
        ("introducers:\n  one: {}\n", "'furl'"),
        ("introducers:\n  one:\n    furl: http://x\n", "pb://"),
        ("introducers:\n  1:\n    furl: pb://x\n", "text"),
        ("introducers: {a: [}", "YAML"),
    ],
)
def test_bad_introducers_yaml(tmp_path: pathlib.Path, text: str, match: str) -> None:
    with pytest.raises(IntroducerConfigError, match=match):
        load_introducers_yaml(_write(tmp_path, text))


def test_servers_yaml_as_documented(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path,
        f"storage:\n  {KEY_S}:\n    ann:\n      nickname: my-server-1\n      anonymous-storage-FURL: {FURL}\n"
        f"    connections:\n      tcp: tcp\n  my-serverid-1:\n    ann:\n      anonymous-storage-FURL: {FURL}\n",
    )
    servers = load_servers_yaml(path)
    assert set(servers) == {KEY_S.encode(), b"my-serverid-1"}
    s = servers[KEY_S.encode()]
    assert s.server_id == KEY_S.encode()
    assert s.ann["nickname"] == "my-server-1" and s.ann["anonymous-storage-FURL"] == FURL
    assert s.ann["service-name"] == "storage"
    assert s.connections == {"tcp": "tcp"}
    assert load_servers_yaml(str(tmp_path / "missing.yaml")) == {}
    assert load_servers_yaml(_write(tmp_path, "")) == {}


@pytest.mark.parametrize(
    "text, match",
    [
        ("storage: [1]", "storage"),
        ("storage:\n  x: {}\n", "'ann'"),
        ("storage:\n  x:\n    ann: {nickname: n}\n", "anonymous-storage-FURL"),
        (f"storage:\n  x:\n    ann: {{anonymous-storage-FURL: '{FURL}', permutation-seed-base32: 5}}\n", "seed"),
        (f"storage:\n  x:\n    ann: {{anonymous-storage-FURL: '{FURL}'}}\n    connections: [1]\n", "connections"),
    ],
)
def test_bad_servers_yaml(tmp_path: pathlib.Path, text: str, match: str) -> None:
    with pytest.raises(IntroducerConfigError, match=match):
        load_servers_yaml(_write(tmp_path, text))


def test_cache_round_trip_and_format(tmp_path: pathlib.Path) -> None:
    ann = {"service-name": "storage", "anonymous-storage-FURL": FURL, "nickname": "n\u00e9", "seqnum": 3}
    data = format_cache([(KEY_S.encode(), ann)])
    # Tahoe: yamlutil.safe_dump([{"ann": ann, "key_s": key_s}]) as UTF-8
    assert data == yaml.safe_dump([{"ann": ann, "key_s": KEY_S}]).encode("utf-8")
    path = tmp_path / cache_filename("default")
    assert path.name == "introducer_default_cache.yaml"
    path.write_bytes(data)
    assert read_cache(str(path)) == [(KEY_S.encode(), ann)]


def test_cache_skips_damage(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.yaml"
    good = {"ann": {"service-name": "storage"}, "key_s": KEY_S}
    path.write_text(yaml.safe_dump([good, {"ann": {}, "key_s": KEY_S}, {"key_s": "v1-x", "ann": {}}, 7]))
    assert read_cache(str(path)) == [(KEY_S.encode(), {"service-name": "storage"})]
    path.write_text("{not: [yaml")
    assert read_cache(str(path)) == []
    path.write_text("just a string")
    assert read_cache(str(path)) == []
    assert read_cache(str(tmp_path / "missing")) == []


def test_sequencer(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "announcement-seqnum"
    seq = FileSequencer(str(path))
    s1, n1 = seq()
    s2, n2 = seq()
    assert (s1, s2) == (1, 2)
    assert path.read_text() == "2\n"
    assert n1 != n2 and len(n1) == 52 and n1.isalnum() and isinstance(n1, str)
    path.write_text("41\n")
    assert FileSequencer(str(path))()[0] == 42
    path.write_text("zz")
    with pytest.raises(IntroducerConfigError, match="not a number"):
        seq()
