"""Corruption advisories: a client's report that a share it read was bad.

Stored as Tahoe-LAFS 1.20 stores them (storage/server.py,
render_corruption_report and get_corruption_report_path): one UTF-8 text
file per report in ``storage/corruption-advisories/``, named
``<UTC ISO time with 'T', colons removed>--<SI base32>-<shnum>``, holding::

    report: Share Corruption
    type: <share type>
    storage_index: <SI base32>
    share_number: <shnum>

    <reason>

Only reports about shares this server holds are kept, and only while there
is room for them. shoal writes each file atomically and, should two reports
land in the same microsecond, adds ``.2``, ``.3``... instead of overwriting.
"""

import datetime
import os

from shoal.storage import layout

REPORT_FORMAT = """\
report: Share Corruption
type: {type}
storage_index: {storage_index}
share_number: {share_number}

{reason}

"""


def render_report(share_type: bytes, storage_index: bytes, shnum: int, reason: bytes) -> str:
    return REPORT_FORMAT.format(
        type=share_type.decode("utf-8", errors="replace"),
        storage_index=layout.si_b2a(storage_index),
        share_number=shnum,
        reason=reason.decode("utf-8", errors="replace"),
    )


def iso_utc(when: float) -> str:
    """Tahoe's time_format.iso_utc(sep="T"): microseconds shown unless zero."""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC).replace(tzinfo=None)
    return moment.isoformat("T")


def report_name(when: float, storage_index: bytes, shnum: int) -> str:
    return ("%s--%s-%d" % (iso_utc(when), layout.si_b2a(storage_index), shnum)).replace(":", "")


def write_report(store: layout.StorageLayout, when: float, storage_index: bytes, shnum: int,
                 report: str) -> str:
    """Write the report durably under a name not yet taken; return its path."""
    base = os.path.join(store.advisory_dir, report_name(when, storage_index, shnum))
    path, serial = base, 1
    while os.path.exists(path):
        serial += 1
        path = f"{base}.{serial}"
    layout.write_file_durably(path, report.encode("utf-8"), store.temp_path())
    return path
