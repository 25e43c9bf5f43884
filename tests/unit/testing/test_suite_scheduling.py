"""tests/scheduling.py: which unit a test belongs to, and which waiting unit goes out next."""

import pytest

from tests.scheduling import MEASURED_SECONDS, next_unit, unit_of, worker_spec


def test_a_module_is_one_unit_whatever_the_test_id():
    ids = ["tests/grid/test_upload.py::test_a",
           "tests/grid/test_upload.py::TestClass::test_b",
           "tests/grid/test_upload.py::test_c[a::b-@x]"]
    assert {unit_of(i) for i in ids} == {"tests/grid/test_upload.py"}


def test_the_netgrid_package_is_one_unit():
    assert unit_of("tests/netgrid/test_wan.py::test_up") == "tests/netgrid"
    assert unit_of("tests/netgrid/test_faults.py::test_cut[1]") == "tests/netgrid"
    assert unit_of("tests/netgridx/test_a.py::t") == "tests/netgridx/test_a.py"


def test_the_costliest_waiting_unit_goes_first():
    seconds = {"b": 10.0, "c": 30.0}
    assert next_unit(["a", "b", "c"], seconds) == "c"
    assert next_unit(["a", "b"], seconds) == "b"


def test_units_of_equal_cost_go_in_collection_order():
    assert next_unit(["x", "y", "z"], {}) == "x"
    assert next_unit(["x", "y"], {"x": 5, "y": 5}) == "x"


def test_nothing_waiting_is_a_mistake():
    with pytest.raises(ValueError):
        next_unit([], {})


def test_measured_units_are_real_paths():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[3]
    for unit in MEASURED_SECONDS:
        assert (root / unit).exists(), unit


def test_a_popen_worker_gets_the_controllers_bytes_warning_flag():
    assert worker_spec("popen", "/v/bin/python", 1) == "popen//python=/v/bin/python -b"
    assert worker_spec("popen", "/v/bin/python", 2) == "popen//python=/v/bin/python -bb"
    assert worker_spec("popen", "/a dir/python", 1) == "popen//python='/a dir/python' -b"


def test_without_b_or_with_a_spec_of_ones_own_nothing_changes():
    assert worker_spec("popen", "/v/bin/python", 0) == "popen"
    assert worker_spec("ssh=host//python=python3", "/v/bin/python", 1) == "ssh=host//python=python3"
