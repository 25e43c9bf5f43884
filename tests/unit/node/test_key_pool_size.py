"""[client] mutable.key_pool: how many RSA keys a client node makes ahead."""

import pytest

from shoal.node.config import ConfigError, load_config
from shoal.node.files import DEFAULT_KEY_POOL, key_pool_size
from shoal.testing.processes import set_config


def test_unset_is_the_default(nodedir):
    assert key_pool_size(load_config(nodedir)) == DEFAULT_KEY_POOL == 2
    set_config(nodedir, "client", "mutable.key_pool", "")
    assert key_pool_size(load_config(nodedir)) == DEFAULT_KEY_POOL


@pytest.mark.parametrize("size", [0, 1, 48, 1024])
def test_sizes_in_range(nodedir, size):
    set_config(nodedir, "client", "mutable.key_pool", str(size))
    assert key_pool_size(load_config(nodedir)) == size


@pytest.mark.parametrize("value", ["-1", "1025", "many", "2.5"])
def test_bad_values_name_file_and_key(nodedir, value):
    set_config(nodedir, "client", "mutable.key_pool", value)
    with pytest.raises(ConfigError, match=r"tahoe\.cfg: \[client\]mutable\.key_pool"):
        key_pool_size(load_config(nodedir))
