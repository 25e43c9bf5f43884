"""What runs: shoal's version and those of the libraries it is built on.

`shoal --version` prints these lines, and a node writes them to its log when it
starts, so a report from an operator says exactly which set was installed.
"""

import platform
from importlib import metadata

from shoal import __version__

# The distributions whose versions decide shoal's behaviour (wire formats, TLS, erasure coding).
KEY_DISTRIBUTIONS = (
    "twisted", "foolscap", "cryptography", "pyopenssl", "zfec", "pycryptodome", "cbor2",
    "attrs", "h11", "pyyaml", "prometheus-client", "rich",
)


def versions() -> list[tuple[str, str]]:
    """(name, version) for shoal, Python and each key distribution ("not installed" when absent)."""
    rows = [("shoal", __version__), ("python", f"{platform.python_version()} ({platform.python_implementation()})")]
    for name in KEY_DISTRIBUTIONS:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return rows


def version_text() -> str:
    """`shoal 0.1.0` on the first line, then one `name version` line per dependency."""
    rows = versions()
    width = max(len(name) for name, _ in rows)
    return "\n".join([f"shoal {__version__}"] + [f"  {name:<{width}}  {v}" for name, v in rows[1:]])
