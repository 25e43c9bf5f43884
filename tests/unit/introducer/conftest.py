from tests.unit.introducer.foolscap_harness import harness  # noqa: F401
