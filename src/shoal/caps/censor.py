"""Text fit for a log: every cap in it (plain or percent-encoded) replaced.

A cap is ``URI:`` and a kind followed by ``:``-separated fields of base32 or
digits (Tahoe-LAFS 1.20's forms: CHK, LIT, SSK, MDMF, DIR2 and their -RO,
-CHK, -LIT, -Verifier variants). Knowing a write cap is holding the file, so
no log, status page or error meant for someone else may show one.
"""

import re

CENSORED = "URI:[CENSORED]"
_CAP = re.compile(r"URI(?::|%3A)[A-Za-z0-9-]+(?:(?::|%3A)[A-Za-z0-9]*)+", re.IGNORECASE)


def censor_caps(text: str) -> str:
    """`text` with every cap in it replaced by ``URI:[CENSORED]``."""
    return _CAP.sub(CENSORED, text)


# A FURL or NURL names its object by a secret (the swissnum after the hints): whoever knows it
# may call the object (an introducer's publish, a storage server's allocate).
_FURL_SECRET = re.compile(r"(pb://[^/\s\"']+/)[^\s#\"',;)]+")


def censor_secrets(text: str) -> str:
    """`text` with every cap and every FURL/NURL secret replaced: the one filter of the node's log."""
    return _FURL_SECRET.sub(r"\1[CENSORED]", censor_caps(text))
