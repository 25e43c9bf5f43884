"""A NodeMaker over real storage servers in process (LocalGrid), for behaviour tests
of what is built on files and directories (the blob backend, the SFTP tree)."""

import types

from shoal.dirnode import NodeMaker
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient
from shoal.mutable.keypool import KeyPool
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from tests.unit.mutable.vector_keys import fresh_key


def node_maker(grid: LocalGrid, k: int, happy: int, n: int) -> NodeMaker:
    """Fixed secrets, and RSA keys from the test key set (no key generation)."""
    identity = types.SimpleNamespace(convergence_secret=b"C" * 32, lease_secret=b"L" * 32)
    files = ClientFiles(grid.broker, EncodingParams(k, happy, n), identity)
    return NodeMaker(files, MutableClient(grid.broker, lease_secret=b"L" * 32, k=k, n=n,
                                          key_pool=KeyPool(0, fresh_key)))
