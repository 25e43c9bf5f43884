"""Check and verify an immutable (CHK) file, as Tahoe-LAFS 1.20's checker does.

- **check**: ask every connected server at once which shares it holds
  (get_buckets); nothing is read. Every share a server names counts as good.
- **verify**: ``shoal.immutable.verify`` reads every block of every share
  and checks it against the share's hash trees, the share's hash chain
  against the UEB and the UEB against the cap (a verify cap is enough);
  shares that fail are named exactly (server, share number) and reported
  to their servers with advise_corrupt_share, whose servers then check the
  share themselves and quarantine it if it is damaged (shoal.storage).
- **add_lease** (either mode): every server is also sent add_lease with this
  client's lease secrets for the file, derived as Tahoe derives them (client
  secret -> file secret -> bucket secret keyed by the server's tub id), so a
  regular check keeps a file's leases alive.

The result is a ``CheckResults`` (see results for Tahoe's JSON shape).
"""

from typing import Any

from twisted.internet import defer

from shoal.caps import CHKCap, CHKVerifierCap
from shoal.checker.results import CheckResults, happiness_floor
from shoal.crypto import hashes
from shoal.encoding.base32 import b2a
from shoal.grid.storage_client import ServerError
from shoal.immutable.decoder import FileIdentity, FileValidator
from shoal.immutable.share_finder import ShareFinder
from shoal.immutable.verify import VerifyResult, verify
from shoal.placement.happiness import servers_of_happiness


def lease_secrets_for(lease_secret: bytes, storage_index: bytes, tubid: bytes) -> tuple[bytes, bytes]:
    """(renew, cancel) secrets of this client's lease on one server's shares of a file."""
    renew = hashes.file_renewal_secret(hashes.client_renewal_secret(lease_secret), storage_index)
    cancel = hashes.file_cancel_secret(hashes.client_cancel_secret(lease_secret), storage_index)
    return hashes.bucket_renewal_secret(renew, tubid), hashes.bucket_cancel_secret(cancel, tubid)


async def add_leases(broker: Any, storage_index: bytes, lease_secret: bytes) -> dict[bytes, str]:
    """Send add_lease to every connected server; {server id: error} for those that failed."""
    failed: dict[bytes, str] = {}

    async def one(server: Any) -> None:
        renew, cancel = lease_secrets_for(lease_secret, storage_index, server.tubid)
        try:
            await server.connected_storage("add_lease").add_lease(storage_index, renew, cancel)
        except ServerError as e:
            failed[server.server_id] = f"{type(e).__name__}: {e}".splitlines()[0]

    servers = list(broker.get_servers_for_psi(storage_index))
    await defer.DeferredList([defer.ensureDeferred(one(s)) for s in servers])
    return failed


def _identity(cap: CHKCap | CHKVerifierCap) -> FileIdentity:
    return FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, None)


async def find_shares(
    broker: Any, cap: CHKCap | CHKVerifierCap
) -> tuple[dict[int, tuple[bytes, ...]], list[bytes], dict[bytes, str], dict[bytes, str]]:
    """(shnum -> servers, servers asked, server id -> why it did not answer, server id -> nickname)."""
    finder = ShareFinder(broker, cap.storage_index, FileValidator(_identity(cap)),
                         report_corruption=False)
    asked = [s.server_id for s in broker.get_servers_for_psi(cap.storage_index)]
    try:
        finder.start()
        await finder.all_answered()
    finally:
        await finder.finish()
    names = {s.server_id: getattr(s, "nickname", "") or "" for s in broker.get_servers_for_psi(cap.storage_index)}
    return finder.shares_found(), asked, dict(finder.no_answer), names


def build_results(
    cap: CHKCap | CHKVerifierCap,
    good: dict[int, tuple[bytes, ...]],
    responding: list[bytes],
    *,
    happy: int,
    corrupt: tuple[tuple[bytes, int], ...] = (),
    incompatible: tuple[tuple[bytes, int], ...] = (),
    report: tuple[str, ...] = (),
    verified: bool = False,
    names: dict[bytes, str] | None = None,
) -> CheckResults:
    """CheckResults from the good shares found (Tahoe's counts, shoal's health rule)."""
    k, n = cap.needed, cap.total
    good = {sh: tuple(sorted(set(sids))) for sh, sids in sorted(good.items()) if sids and 0 <= sh < n}
    happiness = servers_of_happiness(good)
    hosts = {sid for sids in good.values() for sid in sids}
    recoverable = len(good) >= k
    floor = happiness_floor(happy, len(responding))
    healthy = len(good) == n and happiness >= floor
    if healthy:
        summary = "Healthy"
    elif len(good) == n:
        summary = f"Not Healthy: {n} shares on only {happiness} server(s) of happiness (want {floor})"
    else:
        summary = f"Not Healthy: {len(good)} shares (enc {k}-of-{n})"
    lines = list(report)
    if corrupt:
        lines.append(f"corrupt shares: {len(corrupt)}")
    return CheckResults(
        storage_index=cap.storage_index,
        healthy=healthy,
        recoverable=recoverable,
        count_happiness=happiness,
        count_shares_needed=k,
        count_shares_expected=n,
        count_shares_good=len(good),
        count_good_share_hosts=len(hosts),
        count_recoverable_versions=int(recoverable),
        count_unrecoverable_versions=int(not recoverable),
        servers_responding=tuple(responding),
        sharemap=good,
        corrupt_shares=tuple(sorted(corrupt)),
        incompatible_shares=tuple(sorted(incompatible)),
        summary=summary,
        report=tuple(lines),
        verified=verified,
        server_names=dict(names or {}),
    )


def results_from_verify(cap: CHKCap | CHKVerifierCap, found: VerifyResult, *, happy: int,
                        extra_report: tuple[str, ...] = ()) -> CheckResults:
    """CheckResults from what the verifier found (every failure named in the report)."""
    corrupt = tuple((f.server_id, f.shnum) for f in found.failures if f.kind == "corrupt")
    incompatible = tuple((f.server_id, f.shnum) for f in found.failures if f.kind == "error")
    responding = [sid for sid in found.server_names if sid not in found.no_answer]
    report = [f"share {f.shnum} on {found.server_names.get(f.server_id, b2a(f.server_id))}: "
              f"[{f.kind}] {f.reason}" for f in found.failures]
    report += [f"no answer from {found.server_names.get(sid, b2a(sid))}: {why}"
               for sid, why in found.no_answer.items()]
    return build_results(
        cap, dict(found.good), responding, happy=happy, corrupt=corrupt, incompatible=incompatible,
        report=tuple(report) + extra_report, verified=True,
        names={sid: name.split(" (")[0] for sid, name in found.server_names.items()},
    )


async def check_immutable(
    broker: Any,
    cap: CHKCap | CHKVerifierCap,
    *,
    verify_blocks: bool = False,
    add_lease: bool = False,
    lease_secret: bytes | None = None,
    happy: int = 7,
) -> CheckResults:
    """Check (or with ``verify_blocks`` verify) one immutable file."""
    leases: defer.Deferred[dict[bytes, str]] | None = None
    if add_lease:
        if lease_secret is None:
            raise ValueError("add_lease needs the client's lease secret")
        leases = defer.ensureDeferred(add_leases(broker, cap.storage_index, lease_secret))
    extra: tuple[str, ...] = ()
    try:
        if verify_blocks:
            found = await verify(broker, cap, report_corruption=True)
        else:
            shares, asked, no_answer, names = await find_shares(broker, cap)
    finally:
        if leases is not None:
            failures = await leases
            extra = tuple(f"add_lease failed on {b2a(sid)}: {why}" for sid, why in failures.items())
    if verify_blocks:
        return results_from_verify(cap, found, happy=happy, extra_report=extra)
    responding = [sid for sid in asked if sid not in no_answer]
    report = tuple(f"no answer from {names.get(sid) or b2a(sid)}: {why}" for sid, why in no_answer.items())
    return build_results(cap, shares, responding, happy=happy, report=report + extra, names=names)
