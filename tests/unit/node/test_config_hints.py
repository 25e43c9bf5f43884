"""[node]tub.location and the FURL keys are checked at config load: a garbage hint is one
line naming the file and key; Tahoe's AUTO becomes this host's addresses."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.node.config import ConfigError, load_config


def write_cfg(tmp_path, node: str = "", client: str = "") -> str:
    basedir = tmp_path / "node"
    basedir.mkdir(exist_ok=True)
    (basedir / "tahoe.cfg").write_text(f"[node]\ntub.port = tcp:4567\n{node}\n[client]\n{client}\n")
    return str(basedir)


@pytest.mark.parametrize("location", ["tcp:", "foo", "tcp:host:notaport", "tcp:a:1,,tcp:b:2", "tcp:a:1,",
                                      "tcp:a:99999", " , "])
def test_a_garbage_tub_location_is_one_line_naming_file_and_key(tmp_path, location):
    with pytest.raises(ConfigError) as e:
        load_config(write_cfg(tmp_path, node=f"tub.location = {location}"))
    text = str(e.value)
    assert "\n" not in text and "tahoe.cfg: [node]tub.location" in text


@pytest.mark.parametrize("key", ["introducer.furl", "helper.furl"])
@pytest.mark.parametrize("furl", ["pb://" + "a" * 32 + "@tcp:/swissnumsecret", "pb://" + "a" * 32 + "@foo/swissnumsecret",
                                  "pb://nottubid@tcp:a:1/swissnumsecret", "pb://" + "a" * 32 + "@/swissnumsecret"])
def test_a_furl_with_bad_hints_is_refused_without_its_swissnum(tmp_path, key, furl):
    with pytest.raises(ConfigError) as e:
        load_config(write_cfg(tmp_path, node="tub.location = tcp:a:1", client=f"{key} = {furl}"))
    assert f"tahoe.cfg: [client]{key}" in str(e.value) and "swissnumsecret" not in str(e.value)


@settings(max_examples=30)
@given(st.lists(st.sampled_from(["tcp:example.org:4567", "tcp:10.0.0.1:1", "example.net:80", "tor:x.onion:9",
                                 "i2p:abc.i2p", "tcp:[::1]:5"]), min_size=1, max_size=4, unique=True))
def test_good_locations_load_unchanged(tmp_path_factory, hints):
    basedir = write_cfg(tmp_path_factory.mktemp("cfg"), node="tub.location = " + ", ".join(hints))
    assert load_config(basedir).tub_location() == ",".join(hints)


def test_auto_is_expanded_with_the_tub_port(tmp_path):
    cfg = load_config(write_cfg(tmp_path, node="tub.location = AUTO,tcp:example.org:80"))
    hints = cfg.tub_location().split(",")
    assert hints[0] == "tcp:127.0.0.1:4567" and hints[-1] == "tcp:example.org:80"
    assert all(h.endswith(":4567") for h in hints[:-1])


def test_auto_needs_a_fixed_port(tmp_path):
    basedir = write_cfg(tmp_path, node="tub.location = AUTO")
    (tmp_path / "node" / "tahoe.cfg").write_text("[node]\ntub.port = tcp:0\ntub.location = AUTO\n")
    with pytest.raises(ConfigError, match=r"\[node\]tub.location: AUTO needs"):
        load_config(basedir).tub_location()
