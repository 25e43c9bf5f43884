"""Issue #15 (#11): a node directory with a bad setting, run as a real
`shoal run` process, exits non-zero with one line on stderr naming the file
and the key: endpoint strings of every port key, unreadable or garbage
private files, bad sizes and numbers."""

import os
import shutil
import subprocess
import sys

import pytest

from shoal.testing.processes import create_storage_node, set_config


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    nodedir = str(tmp_path_factory.mktemp("badcfg") / "node")
    create_storage_node(nodedir, "--webport", "tcp:0:interface=127.0.0.1")
    return nodedir


def write_private(name: str, data: bytes):
    def change(nodedir: str) -> None:
        with open(os.path.join(nodedir, "private", name), "wb") as f:
            f.write(data)
    return change


def directory_instead(name: str):
    def change(nodedir: str) -> None:
        path = os.path.join(nodedir, "private", name)
        if os.path.exists(path):
            os.unlink(path)
        os.mkdir(path)
    return change


def config(*settings: tuple[str, str, str]):
    def change(nodedir: str) -> None:
        for section, key, value in settings:
            set_config(nodedir, section, key, value)
    return change


BLOBS_ON = ("blobs", "enabled", "true")

CASES = {
    "web.port not a port": (config(("node", "web.port", "tcp:notaport")), "tahoe.cfg: [node]web.port"),
    "web.port unknown type": (config(("node", "web.port", "bogus:1")), "tahoe.cfg: [node]web.port"),
    "web.port TLS key missing": (
        config(("node", "web.port", "ssl:0:privateKey=missing.pem")), "tahoe.cfg: [node]web.port"),
    "tub.port not a port": (config(("node", "tub.port", "tcp:notaport")), "tahoe.cfg: [node]tub.port"),
    "tub.port second bad": (config(("node", "tub.port", "tcp:0,tcp:x")), "tahoe.cfg: [node]tub.port"),
    "tub.location garbage": (config(("node", "tub.location", "tcp:host:notaport")), "tahoe.cfg: [node]tub.location"),
    "tub.location empty hint": (config(("node", "tub.location", "tcp:127.0.0.1:1,")), "tahoe.cfg: [node]tub.location"),
    "helper.furl": (config(("client", "helper.furl", "http://not-a-furl")), "tahoe.cfg: [client]helper.furl"),
    "helper enabled": (config(("helper", "enabled", "maybe")), "tahoe.cfg: [helper]enabled"),
    "blobs port": (config(BLOBS_ON, ("blobs", "port", "tcp:xx")), "tahoe.cfg: [blobs]port"),
    "blobs quota": (config(BLOBS_ON, ("blobs", "quota", "lots")), "tahoe.cfg: [blobs]quota"),
    "reserved_space": (config(("storage", "reserved_space", "lots")), "tahoe.cfg: [storage]reserved_space"),
    "max_space": (config(("storage", "max_space", "-5")), "tahoe.cfg: [storage]max_space"),
    "shares.needed": (config(("client", "shares.needed", "three")), "tahoe.cfg: [client]shares.needed"),
    "storage.timeout": (config(("client", "storage.timeout", "0")), "tahoe.cfg: [client]storage.timeout"),
    "garbage node.pem": (write_private("node.pem", b"garbage\n"), "private/node.pem"),
    "truncated node.pem": (
        write_private("node.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n"), "private/node.pem"),
    "unreadable node.pem": (directory_instead("node.pem"), "private/node.pem"),
    "garbage secret": (write_private("secret", b"!!not base32!!\n"), "private/secret"),
    "unreadable convergence": (directory_instead("convergence"), "private/convergence"),
    "garbage node.privkey": (write_private("node.privkey", b"garbage\n"), "private/node.privkey"),
    "unreadable api_auth_token": (directory_instead("api_auth_token"), "private/api_auth_token"),
    "broken introducers.yaml": (write_private("introducers.yaml", b"introducers: [1,2\n"),
                                "private/introducers.yaml"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_setting_is_one_line_naming_file_and_key(template, tmp_path, case):
    change, names = CASES[case]
    nodedir = str(tmp_path / "node")
    shutil.copytree(template, nodedir)
    change(nodedir)
    r = subprocess.run([sys.executable, "-m", "shoal.main", "run", nodedir], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, (r.stdout, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("shoal: error: ") and "Traceback" not in err
    assert os.path.join(nodedir, names) in err or (nodedir in err and names in err), err
    assert r.stdout == b""
