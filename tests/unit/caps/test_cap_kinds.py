"""Every known cap class says what it is (kind, format, mutable, read-only,
verifier, directory) consistently with its prefix, so no caller needs a tuple
of classes."""

import pytest

from shoal.caps import KNOWN_PREFIXES, UnknownCap

CLASSES = sorted(KNOWN_PREFIXES.values(), key=lambda c: c.PREFIX)


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_properties_follow_the_prefix(cls):
    prefix = cls.PREFIX
    assert cls.kind == prefix[4:-1].lower()
    assert cls.is_verifier == prefix.endswith("-Verifier:")
    assert cls.is_directory == prefix.startswith("URI:DIR2")
    assert cls.format == ("MDMF" if "MDMF" in prefix else "CHK" if "CHK" in prefix
                          else "LIT" if "LIT" in prefix else "SDMF")
    writeable = prefix in ("URI:SSK:", "URI:MDMF:", "URI:DIR2:", "URI:DIR2-MDMF:")
    assert cls.is_readonly == (not writeable)
    assert cls.is_mutable == (cls.format in ("SDMF", "MDMF") and not cls.is_verifier)


def test_kinds_are_distinct_and_unknown_has_one():
    assert len({c.kind for c in CLASSES}) == len(CLASSES)
    assert UnknownCap.kind == "unknown"
