"""[sftpd] configuration: the port endpoint, host keys and accounts file, each
mistake one line naming the key (never a cap or key material)."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shoal.sftp.service import SFTPConfigError, load_host_key, make_sftp_service, parse_port

CAP = "URI:DIR2:ovjy4yhylqlfoqg2vcze36dhde:4d4f47qko2xm5g7osgo2yyidi5m4muyo2vjjy53q4vjju2u55mfa"


@pytest.mark.parametrize("text, expected", [
    ("tcp:8022:interface=127.0.0.1", ("127.0.0.1", 8022)),
    ("tcp:0", ("0.0.0.0", 0)),
    ("tcp:port=2222:interface=\\:\\:1", ("::1", 2222)),
])
def test_port(text, expected):
    assert parse_port(text) == expected


@pytest.mark.parametrize("text", ["", "8022", "unix:/tmp/x", "tcp:", "tcp:99999", "tcp:22:bogus=1", "tcp:x"])
def test_bad_port(text):
    with pytest.raises(SFTPConfigError, match=r"^\[sftpd\]port: "):
        parse_port(text)


def _write_key(path: str) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                  serialization.NoEncryption()))
    with open(path + ".pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return key


def test_host_keys(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _write_key(a)
    _write_key(b)
    private, public = load_host_key(a, a + ".pub")
    assert private.sshType() == b"ssh-ed25519" and not private.isPublic() and public.isPublic()
    assert public.blob() == private.public().blob()
    with pytest.raises(SFTPConfigError, match=r"^\[sftpd\]host_pubkey_file: .*not the public half"):
        load_host_key(a, b + ".pub")
    with pytest.raises(SFTPConfigError, match=r"^\[sftpd\]host_privkey_file: .*no such file"):
        load_host_key(str(tmp_path / "missing"), None)
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(SFTPConfigError, match=r"^\[sftpd\]host_privkey_file: .*not a usable"):
        load_host_key(str(tmp_path / "junk"), None)


def _section(tmp_path, accounts: str, **overrides: str) -> dict[str, str]:
    os.makedirs(tmp_path / "private", exist_ok=True)
    _write_key(str(tmp_path / "private" / "host"))
    (tmp_path / "private" / "accounts").write_text(accounts)
    section = {"enabled": "true", "port": "tcp:0:interface=127.0.0.1", "host_privkey_file": "private/host",
               "host_pubkey_file": "private/host.pub", "accounts.file": "private/accounts"}
    section.update(overrides)
    return section


def test_service_built(tmp_path):
    pub = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"k" * 32).decode()
    service = make_sftp_service(_section(tmp_path, f"alice ssh-ed25519 {pub} {CAP}\n"), str(tmp_path),
                                nodemaker=None, files=None, reactor=None)  # type: ignore[arg-type]
    assert service.port is None  # bound when started


@pytest.mark.parametrize("accounts, overrides, pattern", [
    (f"carol s3cret {CAP}\n", {}, r"^\[sftpd\]accounts.file: .*line 1: Password-based authentication is not supported"),
    ("", {"accounts.file": ""}, r"^\[sftpd\]accounts.file: required"),
    ("", {"accounts.file": "private/nope"}, r"^\[sftpd\]accounts.file: .*cannot read"),
    ("", {"host_privkey_file": ""}, r"^\[sftpd\]host_privkey_file: required"),
    ("", {"port": "unix:/x"}, r"^\[sftpd\]port: "),
])
def test_service_config_errors(tmp_path, accounts, overrides, pattern):
    with pytest.raises(SFTPConfigError, match=pattern) as info:
        make_sftp_service(_section(tmp_path, accounts, **overrides), str(tmp_path),
                          nodemaker=None, files=None, reactor=None)  # type: ignore[arg-type]
    assert "s3cret" not in str(info.value) and CAP not in str(info.value) and "\n" not in str(info.value)
