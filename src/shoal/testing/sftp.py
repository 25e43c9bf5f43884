"""SFTP fixtures: SSH key pairs and a client node directory with ``[sftpd]`` as
Tahoe-LAFS 1.20's docs configure it (used by tests/integration/test_sftp.py and
bench/sftp.py)."""

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shoal.testing import ports
from shoal.testing.processes import create, set_config

HOST_KEY = "private/ssh_host_ed25519_key"


def write_keypair(path: str, comment: str) -> str:
    """An unencrypted OpenSSH ed25519 private key at `path` (0600) and `path`.pub;
    returns the public line (``ssh-ed25519 AAAA... comment``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    line = public.decode("ascii") + " " + comment
    with open(path + ".pub", "w", encoding="ascii") as f:
        f.write(line + "\n")
    return line


def free_port() -> int:
    """A port of this xdist worker's own block (shoal.testing.ports): no other worker's pick."""
    return ports.free_port()


def make_sftp_node(nodedir: str, introducer_furl: str, port: int, accounts: str, *create_args: str) -> None:
    """Create a client node directory whose [sftpd] listens on 127.0.0.1:`port` with a
    fresh host key and `accounts` as its accounts file (private/accounts, 0600)."""
    create("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--nickname", "sftp-client",
           "--introducer", introducer_furl, *create_args, nodedir)
    write_keypair(os.path.join(nodedir, HOST_KEY), "host")
    for key, value in (("enabled", "true"), ("port", f"tcp:{port}:interface=127.0.0.1"),
                       ("host_pubkey_file", HOST_KEY + ".pub"), ("host_privkey_file", HOST_KEY),
                       ("accounts.file", "private/accounts")):
        set_config(nodedir, "sftpd", key, value)
    fd = os.open(os.path.join(nodedir, "private", "accounts"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(accounts)
