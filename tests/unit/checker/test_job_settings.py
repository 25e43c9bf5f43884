"""The [checker] settings of the checker job, and which files a round verifies."""

import pytest

from shoal.checker.job import CheckerConfigError, CheckerSettings, verified_this_round


def test_defaults_and_every_key():
    assert CheckerSettings.parse({}) == CheckerSettings()
    settings = CheckerSettings.parse({
        "enabled": "true", "roots": "URI:DIR2:a:b, URI:DIR2-MDMF:c:d", "interval": "2d",
        "verify-fraction": "0.25", "repair": "no", "add-lease": "off", "pause": "100s",
    })
    assert settings == CheckerSettings(True, ("URI:DIR2:a:b", "URI:DIR2-MDMF:c:d"), 2 * 86400.0, 0.25,
                                       False, False, 100.0)
    assert CheckerSettings.parse({"interval": "90m"}).interval == 5400.0
    assert CheckerSettings.parse({"interval": "30"}).interval == 30.0


@pytest.mark.parametrize("values,named", [
    ({"interval": "soon"}, "interval"),
    ({"interval": "-1h"}, "interval"),
    ({"verify-fraction": "2"}, "verify-fraction"),
    ({"repair": "maybe"}, "repair"),
    ({"enabled": "true"}, "roots"),
    ({"frequency": "1d"}, "frequency"),
])
def test_bad_settings_name_the_key(values, named):
    with pytest.raises(CheckerConfigError, match=f"\\[checker\\]{named}"):
        CheckerSettings.parse(values)


def test_verification_rotates_through_the_files():
    sis = [f"si{i:04d}" for i in range(2000)]
    assert not any(verified_this_round(si, 1, 0.0) for si in sis)
    assert all(verified_this_round(si, 1, 1.0) for si in sis)
    chosen = {r: {si for si in sis if verified_this_round(si, r, 0.25)} for r in range(1, 9)}
    assert all(400 < len(c) < 600 for c in chosen.values())
    assert chosen[1] != chosen[2] and chosen[1] == {si for si in sis if verified_this_round(si, 1, 0.25)}
    assert len(set().union(*chosen.values())) > 0.85 * len(sis)  # most files verified within 8 rounds
