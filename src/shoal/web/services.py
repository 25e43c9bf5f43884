"""What the node hands the web layer: its services, as one value (keeps web free of node imports)."""

from typing import Any

import attrs

from shoal.web.common import FileService
from shoal.web.history import History
from shoal.web.operations import OperationTable
from shoal.web.statistics import NodeStats


@attrs.define
class WebServices:
    files: FileService | None
    history: History = attrs.field(factory=History)
    stats: NodeStats = attrs.field(factory=NodeStats)
    operations: OperationTable = attrs.field(factory=OperationTable)
    auth_token: bytes | None = None  # private/api_auth_token: guards /private/
    helper_stats: Any = None  # the upload helper's stats() when [helper] is enabled
    helper_uploads: Any = None  # and its status(): the uploads under way
    mutable: Any = None  # shoal.mutable.MutableClient, once wired
    nodemaker: Any = None  # shoal.dirnode.NodeMaker, once wired
    checker: Any = None  # shoal.checker.FileChecker, once wired
    checker_status: Any = None  # the checker job's status() when [checker] is enabled
    storage: Any = None  # shoal.web.storagepage.StorageSource when this node runs a storage server
