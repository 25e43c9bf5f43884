"""The node's persistent secrets and keys, created on first start as Tahoe 1.20 does.

private/secret, private/convergence: base32 of 32 random bytes and a newline
(the lease secret and the convergence secret). private/node.privkey:
"priv-v0-" + base32(Ed25519 seed); node.pubkey beside tahoe.cfg. The Foolscap
Tub certificate (private/node.pem) is made by Foolscap itself; my_nodeid holds
the base32 tub id, as Tahoe writes it. permutation-seed is written once.
"""

import os
from collections.abc import Callable

import attrs

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import a2b, b2a_bytes
from shoal.errors import EncodingError
from shoal.node.config import ConfigError, NodeConfig

SECRET_LENGTH = 32


def write_atomically(path: str, data: bytes, mode: int = 0o600) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # a leftover temporary keeps its old mode through O_CREAT
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def get_or_create(path: str, make: Callable[[], bytes]) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        data = make()
        write_atomically(path, data)
        return data


def _random_secret() -> bytes:
    return b2a_bytes(os.urandom(SECRET_LENGTH)) + b"\n"


def _decode_secret(path: str, text: bytes) -> bytes:
    stripped = text.strip()
    if not stripped:
        return b""  # an empty convergence secret means "converge with everyone"
    try:
        return a2b(stripped)
    except EncodingError:
        raise ConfigError(f"{path}: not a base32 secret") from None


@attrs.frozen
class NodeIdentity:
    lease_secret: bytes
    convergence_secret: bytes
    signing_key: SigningKey = attrs.field(eq=False)


def load_identity(config: NodeConfig) -> NodeIdentity:
    secret_path = config.private_path("secret")
    conv_path = config.private_path("convergence")
    key_path = config.private_path("node.privkey")
    lease = _decode_secret(secret_path, get_or_create(secret_path, _random_secret))
    conv = _decode_secret(conv_path, get_or_create(conv_path, _random_secret))
    key_text = get_or_create(key_path, lambda: SigningKey.generate().to_string() + b"\n")
    try:
        key = SigningKey.from_string(key_text)
    except Exception as e:
        raise ConfigError(f"{key_path}: {e}") from None
    write_atomically(config.node_path("node.pubkey"), key.verifying_key().to_string() + b"\n", 0o644)
    return NodeIdentity(lease, conv, key)


def write_node_id_files(config: NodeConfig, tubid_b32: str) -> None:
    write_atomically(config.node_path("my_nodeid"), tubid_b32.encode("ascii") + b"\n", 0o644)


def permutation_seed(config: NodeConfig, identity: NodeIdentity, tubid_b32: str, had_shares: bool) -> bytes:
    """Tahoe's rule: a server that held shares before it had a seed keeps its
    tub id; otherwise base32 of the *text* of its Ed25519 public key."""
    path = config.node_path("permutation-seed")

    def make() -> bytes:
        if had_shares:
            return tubid_b32.encode("ascii") + b"\n"
        # base32 of the 52-character base32 *text* of the key (Tahoe's quirk)
        text = identity.signing_key.verifying_key().to_string()
        return b2a_bytes(text[len(b"pub-v0-") :]) + b"\n"

    return get_or_create(path, make).strip()
