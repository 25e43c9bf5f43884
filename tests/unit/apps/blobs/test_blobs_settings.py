"""The [blobs] section: defaults, sizes, unknown keys, and the root cap rules."""

import pytest

from shoal.apps.blobs.errors import BlobStoreError
from shoal.apps.blobs.service import DEFAULT_PORT, DEFAULT_QUOTA, BlobConfigError, BlobSettings
from shoal.apps.blobs.store import check_root_cap
from shoal.caps import CHKCap, DirectoryWriteCap, SSKWriteCap
from shoal.node.config import parse_size


def test_defaults(tmp_path):
    s = BlobSettings.from_section({"enabled": "true"}, str(tmp_path), parse_size)
    assert s.port == DEFAULT_PORT and s.quota == DEFAULT_QUOTA == 200 * 1024 * 1024
    assert s.root_cap is None
    assert s.path(s.tokens_file) == str(tmp_path / "private" / "blobs.tokens")
    assert s.path(s.index) == str(tmp_path / "private" / "blobs" / "index.sqlite")  # it holds caps


def test_values(tmp_path):
    s = BlobSettings.from_section({"port": "tcp:0", "quota": "5MiB", "tokens_file": "/etc/tokens",
                                   "root_cap": " URI:DIR2:x:y "}, str(tmp_path), parse_size)
    assert (s.port, s.quota, s.path(s.tokens_file), s.root_cap) == ("tcp:0", 5 * 2**20, "/etc/tokens", "URI:DIR2:x:y")


def test_errors(tmp_path):
    with pytest.raises(BlobConfigError, match="qouta"):
        BlobSettings.from_section({"qouta": "1"}, str(tmp_path), parse_size)
    with pytest.raises(BlobConfigError, match="quota"):
        BlobSettings.from_section({"quota": "lots"}, str(tmp_path), parse_size)


def test_root_cap_must_be_a_directory_write_cap():
    dircap = DirectoryWriteCap(SSKWriteCap(b"w" * 16, b"f" * 32)).to_string()
    assert check_root_cap(" " + dircap + "\n", "here") == dircap
    for bad in ("garbage", CHKCap(b"k" * 16, b"u" * 32, 3, 10, 1000).to_string(),
                DirectoryWriteCap(SSKWriteCap(b"w" * 16, b"f" * 32)).readonly().to_string()):
        with pytest.raises(BlobStoreError):
            check_root_cap(bad, "[blobs] root_cap")


def test_max_objects(tmp_path):
    assert BlobSettings.from_section({}, str(tmp_path), parse_size).max_objects == 50_000
    assert BlobSettings.from_section({"max_objects": " 12 "}, str(tmp_path), parse_size).max_objects == 12
    for bad in ("0", "-3", "many", "1e6"):
        with pytest.raises(BlobConfigError, match=r"\[blobs\]max_objects"):
            BlobSettings.from_section({"max_objects": bad}, str(tmp_path), parse_size)
