"""The CLI's errors and their exit status: every one is printed as one line by
shoal.main (``shoal: error: ...``), never with a traceback.

exit 1  CLIError: the operation failed (the node said no, the node is unreachable, ...)
exit 2  UsageError: the command line is wrong (bad argument, unknown alias, no node.url)
"""

from shoal.errors import Fault, ShoalError


class CLIError(ShoalError):
    """An operation failed: the node (the CLI's server) said no or could not be reached."""

    fault = Fault.SERVER

    exit_code = 1


class UsageError(ShoalError):
    """The command line is wrong."""

    fault = Fault.CALLER

    exit_code = 2
