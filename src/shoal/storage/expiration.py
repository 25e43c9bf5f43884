"""When a lease has expired: the ``[storage] expire.*`` options of tahoe.cfg.

Tahoe-LAFS 1.20 (docs/garbage-collection.rst, storage/expirer.py):

- ``expire.enabled``: remove expired leases, and a share once its last lease
  is gone; when False the crawler only counts what it would remove;
- ``expire.mode = age``: a lease expires when its create/renew time plus its
  duration is past; the duration is the 31 days it was granted for, or
  ``expire.override_lease_duration`` when set;
- ``expire.mode = cutoff-date``: a lease expires when it was created or last
  renewed before ``expire.cutoff_date`` (midnight UTC, seconds since epoch);
- ``expire.immutable`` / ``expire.mutable``: which share types may expire.

A lease stores only its expiration time; its create/renew time is that
minus the 31-day lease duration, as Tahoe computes it (storage/lease.py).
As in Tahoe's code, the setting that does not belong to the mode
(``cutoff_date`` in age mode, ``override_lease_duration`` in cutoff-date
mode) is ignored. One deliberate difference: with mode ``age`` and no override, Tahoe 1.20's
code compares the lease's age with its absolute expiration timestamp and so
never expires anything; shoal does what the documentation says (expire once
the expiration time has passed).
"""

import attrs

LEASE_DURATION = 31 * 24 * 60 * 60  # seconds; storage/server.py DEFAULT_RENEWAL_TIME
MODES = ("age", "cutoff-date")
SHARETYPES = frozenset({"mutable", "immutable"})


def _check_mode(_instance: object, _attribute: object, value: str) -> None:
    if value not in MODES:
        raise ValueError(f"expire.mode must be one of {MODES}, not {value!r}")


def _check_sharetypes(_instance: object, _attribute: object, value: frozenset[str]) -> None:
    unknown = set(value) - SHARETYPES
    if unknown:
        raise ValueError(f"share types must be among {sorted(SHARETYPES)}, not {sorted(unknown)}")


def _optional_seconds(_instance: object, attribute: "attrs.Attribute[int | None]", value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{attribute.name} must be a non-negative int of seconds, not {value!r}")


@attrs.frozen
class ExpirationPolicy:
    """The lease-expiration settings of one storage server."""

    enabled: bool = False
    mode: str = attrs.field(default="age", validator=_check_mode)
    override_lease_duration: int | None = attrs.field(default=None, validator=_optional_seconds)
    cutoff_date: int | None = attrs.field(default=None, validator=_optional_seconds)
    sharetypes: frozenset[str] = attrs.field(
        default=SHARETYPES, converter=frozenset, validator=_check_sharetypes
    )

    def __attrs_post_init__(self) -> None:
        if self.enabled and self.mode == "cutoff-date" and self.cutoff_date is None:
            raise ValueError("expire.mode = cutoff-date needs expire.cutoff_date")

    def lease_expired(self, expiration_time: int, now: float) -> bool:
        """Whether a lease with this expiration time counts as expired at ``now``."""
        granted = expiration_time - LEASE_DURATION
        if self.mode == "age":
            duration = (
                self.override_lease_duration
                if self.override_lease_duration is not None
                else LEASE_DURATION
            )
            return granted + duration < now
        return self.cutoff_date is not None and granted < self.cutoff_date

    def may_expire(self, sharetype: str) -> bool:
        """Whether shares of this type ("mutable" or "immutable") may be expired at all."""
        return sharetype in self.sharetypes
