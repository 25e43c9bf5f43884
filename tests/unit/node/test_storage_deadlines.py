"""[client] storage.timeout: how long the client waits on one storage server."""

import pytest

from shoal.grid.storage_client import Deadlines
from shoal.node.config import ConfigError, load_config
from shoal.node.files import storage_deadlines
from shoal.testing.processes import set_config


def test_unset_is_the_default(nodedir):
    assert storage_deadlines(load_config(nodedir)) == Deadlines()
    set_config(nodedir, "client", "storage.timeout", "")
    assert storage_deadlines(load_config(nodedir)) == Deadlines()


@pytest.mark.parametrize("seconds, advise", [(5, 5), (45, 10)])
def test_seconds_set_queries_and_reads_and_writes_get_twice(nodedir, seconds, advise):
    set_config(nodedir, "client", "storage.timeout", str(seconds))
    assert storage_deadlines(load_config(nodedir)) == Deadlines(query=seconds, read=seconds,
                                                                write=2 * seconds, advise=advise)


@pytest.mark.parametrize("value", ["0", "-1", "3601", "soon", "1.5"])
def test_bad_values_name_file_and_key(nodedir, value):
    set_config(nodedir, "client", "storage.timeout", value)
    with pytest.raises(ConfigError, match=r"tahoe\.cfg: \[client\]storage\.timeout"):
        storage_deadlines(load_config(nodedir))
