"""Check and verify a mutable (SDMF or MDMF) file, as Tahoe-LAFS 1.20's mutable checker does.

- **check**: a server map in MODE_CHECK (shoal.mutable.servermap): every
  server is asked for the first bytes of every share it holds; a share counts
  when its verification key matches the cap's fingerprint and its signature
  verifies. Tahoe's rules: healthy means exactly one recoverable version, no
  unrecoverable one, and N good shares of it; shares of other versions are
  "wrong shares"; shares that fail are corrupt.
- **verify**: also reads every share of the best version whole and checks its
  share hash chain against the signed root hash and every block (MDMF: salt
  and block) against its block hash tree; shares that fail are corrupt and
  are reported to their servers (advise_corrupt_share), which check them and
  quarantine them when they can prove the damage.
- **add_lease**: every server is sent add_lease with this client's secrets.

The sharemap is keyed as Tahoe keys it: ``seq<N>-<first 4 base32 chars of the
root hash>-sh<shnum>``.
"""

from typing import Any

from twisted.internet import defer

from shoal.checker.immutable import add_leases
from shoal.checker.results import CheckResults
from shoal.encoding.base32 import b2a
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import SignedPrefix, unpack_share
from shoal.grid.storage_client import ServerError
from shoal.mutable import MODE_CHECK, remote
from shoal.mutable.decoder import ShareCheckError, check_block, check_block_tree_root
from shoal.mutable.servermap import ServerMap, ShareInfo, update_servermap
from shoal.placement.happiness import servers_of_happiness


def summarize(version: SignedPrefix) -> str:
    """Tahoe's summarize_version: seq<N>-<4 base32 characters of the root hash>."""
    return f"seq{version.seqnum}-{b2a(version.root_hash)[:4]}"


def verify_share_data(prefix: SignedPrefix, shnum: int, data: bytes) -> None:
    """Check one whole share of a version whose prefix is already proven (ShareCheckError)."""
    try:
        share = unpack_share(data)
    except FormatError as e:
        raise ShareCheckError(f"share does not parse: {e}") from None
    if share.prefix != prefix:
        raise ShareCheckError("share's prefix changed since the server map was made")
    check_block_tree_root(prefix, shnum, share.share_hash_chain, share.block_hash_tree)
    if len(share.blocks) != prefix.num_segments:
        raise ShareCheckError(f"share holds {len(share.blocks)} blocks, expected {prefix.num_segments}")
    for segnum, (salt, block) in enumerate(share.blocks):
        check_block(prefix, share.block_hash_tree, segnum, salt, block)


async def _verify_one(info: ShareInfo, storage_index: bytes) -> str | None:
    """Read one share whole and check it; what is wrong with it, or None (also
    when it could not be read: that is the network's fault, not the share's)."""
    try:
        answer = await remote.readv(info.server, storage_index, [info.shnum], [(0, info.offsets.eof)])
    except ServerError:
        return None
    data = answer.get(info.shnum, [b""])[0]
    try:
        verify_share_data(info.prefix, info.shnum, data)
    except ShareCheckError as e:
        reason = str(e)
        await remote.advise_corrupt(info.server, storage_index, info.shnum, reason)
        return reason
    return None


def results_from_servermap(storage_index: bytes, smap: ServerMap,
                           corrupt: dict[tuple[bytes, int], str], *, verified: bool,
                           extra_report: tuple[str, ...] = ()) -> CheckResults:
    """CheckResults by Tahoe's mutable rules from a server map and the shares found corrupt."""
    versions = {
        v: {sh: [i for i in infos if (i.server.server_id, sh) not in corrupt] for sh, infos in by_sh.items()}
        for v, by_sh in smap.versions().items()
    }
    versions = {v: {sh: infos for sh, infos in by_sh.items() if infos} for v, by_sh in versions.items()}
    versions = {v: by_sh for v, by_sh in versions.items() if by_sh}
    order = sorted(versions, key=lambda v: (v.seqnum, v.root_hash))
    recoverable = [v for v in order if len(versions[v]) >= v.k]
    unrecoverable = [v for v in order if len(versions[v]) < v.k]
    report = []
    summary = []
    healthy = True
    if recoverable:
        report.append("Recoverable Versions: " + "/".join(f"{len(versions[v])}*{summarize(v)}" for v in recoverable))
    if unrecoverable:
        report.append("Unrecoverable Versions: " + "/".join(
            f"{len(versions[v])}*{summarize(v)}" for v in unrecoverable))
        healthy = False
        summary.append("some versions are unrecoverable")
    if not recoverable:
        healthy = False
        summary.append("no versions are recoverable")
    if len(recoverable) > 1:
        healthy = False
        summary.append("multiple versions are recoverable")
    chosen = recoverable[-1] if recoverable else (unrecoverable[0] if unrecoverable else None)
    if chosen is not None:
        good = versions[chosen]
        k, n = chosen.k, chosen.n
        hosts = {i.server.server_id for infos in good.values() for i in infos}
        wrong = sum(len(infos) for v, by_sh in versions.items() if v != chosen for infos in by_sh.values())
        if recoverable and len(good) < n:
            healthy = False
            summary.append(f"{len(good)} shares (enc {k}-of-{n})")
        count_good = len(good)
    else:
        k, n, hosts, wrong, count_good = 3, 10, set(), 0, 0  # nothing found: Tahoe's defaults
    sharemap: dict[str, tuple[bytes, ...]] = {}
    for v, by_sh in versions.items():
        for sh, infos in by_sh.items():
            sharemap[f"{summarize(v)}-sh{sh}"] = tuple(sorted({i.server.server_id for i in infos}))
    for (sid, sh), why in sorted(corrupt.items()):
        report.append(f"corrupt: share {sh} on {b2a(sid)[:8]}: {why}")
    report.extend(smap.problems())
    report.extend(extra_report)
    return CheckResults(
        storage_index=storage_index,
        healthy=healthy,
        recoverable=bool(recoverable),
        count_happiness=servers_of_happiness(dict(enumerate(sharemap.values()))),
        count_shares_needed=k,
        count_shares_expected=n,
        count_shares_good=count_good,
        count_good_share_hosts=len(hosts),
        count_recoverable_versions=len(recoverable),
        count_unrecoverable_versions=len(unrecoverable),
        servers_responding=tuple(smap.servers_queried),
        sharemap=sharemap,
        count_wrong_shares=wrong,
        corrupt_shares=tuple(sorted(corrupt)),
        summary="Healthy" if healthy else "Unhealthy: " + " ".join(summary),
        report=tuple(report),
        verified=verified,
        server_names={sid: getattr(s, "nickname", "") or "" for sid, s in smap.servers_queried.items()},
    )


async def check_mutable(
    broker: Any,
    cap: Any,
    *,
    verify_blocks: bool = False,
    add_lease: bool = False,
    lease_secret: bytes | None = None,
) -> tuple[CheckResults, ServerMap]:
    """Check (or verify) one mutable file; also the server map it was judged by."""
    storage_index = cap.storage_index
    leases: defer.Deferred[dict[bytes, str]] | None = None
    if add_lease:
        if lease_secret is None:
            raise ValueError("add_lease needs the client's lease secret")
        leases = defer.ensureDeferred(add_leases(broker, storage_index, lease_secret))
    try:
        smap = await update_servermap(broker, storage_index, cap.fingerprint, mode=MODE_CHECK)
        corrupt = {key: bad.reason for key, bad in smap.bad_shares.items()}
        if verify_blocks:
            best = smap.best_recoverable_version()
            infos = [i for by_sh in smap.shares_of(best).values() for i in by_sh] if best is not None else []
            problems = await defer.gatherResults(
                [defer.ensureDeferred(_verify_one(i, storage_index)) for i in infos], consumeErrors=True
            )
            for info, problem in zip(infos, problems, strict=True):
                if problem is not None:
                    corrupt[(info.server.server_id, info.shnum)] = problem
    finally:
        extra: tuple[str, ...] = ()
        if leases is not None:
            failures = await leases
            extra = tuple(f"add_lease failed on {b2a(sid)}: {why}" for sid, why in failures.items())
    return results_from_servermap(storage_index, smap, corrupt, verified=verify_blocks, extra_report=extra), smap
