"""Repair a mutable (SDMF or MDMF) file: put back missing shares, or republish.

Tahoe-LAFS 1.20 repairs a mutable file by downloading the best version and
publishing it again under a new sequence number, which needs the write cap
(RepairRequiresWritecapError) and is refused when several versions are
recoverable unless forced. shoal does the same, except when the grid holds
nothing but good shares of one version and only some are missing (deleted,
or quarantined by their servers): then the missing shares are rebuilt
*identically* (same salts, same root hash, same sequence number; a fresh
signature over the same signed prefix) and written only where the share
number is absent (test vector: the share reads empty), onto servers that
hold no share of the file first. Nothing any reader holds becomes stale and
no write races a writer's test-and-set. If the rebuilt version does not
match (the grid changed meanwhile), it falls back to republishing.
"""

from typing import Any

from shoal import cpu
from shoal.checker.repair import RepairError
from shoal.checker.results import CheckResults
from shoal.formats.mutable_share import MDMF_DEFAULT_SEGMENT_SIZE, MDMF_VERSION, unpack_share
from shoal.grid.storage_client import ServerError, SlotWrite
from shoal.mutable import MODE_REPAIR, remote
from shoal.mutable.encoder import WriteKeys, encode_version
from shoal.mutable.servermap import ServerMap, update_servermap


def _writekey(cap: Any) -> bytes:
    writekey = getattr(cap, "writekey", None)
    if writekey is None:
        raise RepairError(
            "repairing a mutable file needs its write cap (this is a read or verify cap): "
            "the new shares must be signed"
        )
    return bytes(writekey)


async def repair_mutable(broker: Any, mutable: Any, cap: Any, pre: CheckResults, *,
                         lease_secret: bytes, force: bool = False) -> str:
    """Repair one mutable file after the check `pre`; say what was done (one line)."""
    writekey = _writekey(cap)
    if mutable is None:
        raise RepairError("this checker was built without a mutable-file client: cannot republish")
    if not pre.recoverable:
        raise RepairError("no version is recoverable: nothing to republish")
    if pre.count_recoverable_versions > 1 and not force:
        raise RepairError("several versions are recoverable: repair would pick one (force it to)")
    only_missing = (
        pre.count_recoverable_versions == 1 and pre.count_unrecoverable_versions == 0
        and pre.count_wrong_shares == 0
    )
    if only_missing:
        smap = await update_servermap(broker, cap.storage_index, cap.fingerprint, mode=MODE_REPAIR,
                                      writekey=writekey)
        placed = await _restore_missing(broker, mutable, cap, smap, writekey, lease_secret, pre)
        if placed is not None:
            return f"restored {placed} share(s) of the current version"
    node = mutable.node_for(cap)
    contents = await node.download_best_version()
    await node.overwrite(contents)
    return "republished the best version under a new sequence number"


async def _restore_missing(broker: Any, mutable: Any, cap: Any, smap: ServerMap, writekey: bytes,
                           lease_secret: bytes, pre: CheckResults) -> int | None:
    """Rebuild and write the missing shares of the only version; None if that cannot be done."""
    best = smap.best_recoverable_version()
    if best is None or smap.private_key is None or len(smap.versions()) != 1:
        return None
    have = smap.shares_of(best)
    bad = set(pre.corrupt_shares)
    missing = [sh for sh in range(best.n) if not any((i.server.server_id, sh) not in bad for i in have.get(sh, []))]
    if not missing:
        return 0
    # the salts of the version, from one whole share
    info = next(i for infos in have.values() for i in infos if (i.server.server_id, i.shnum) not in bad)
    answer = await remote.readv(info.server, cap.storage_index, [info.shnum], [(0, info.offsets.eof)])
    share = unpack_share(answer.get(info.shnum, [b""])[0])
    salts = iter([salt for salt, _block in share.blocks] or [best.salt or b""])
    contents = await mutable.node_for(cap).download_best_version()
    keys = await cpu.run(WriteKeys.from_private_key, smap.private_key)
    encoded = await cpu.run(
        lambda: encode_version(
            contents, version=best.version, seqnum=best.seqnum, k=best.k, n=best.n, keys=keys,
            salts=lambda: next(salts),
            max_segment_size=best.segment_size if best.version == MDMF_VERSION else MDMF_DEFAULT_SEGMENT_SIZE,
        )
    )
    if encoded.prefix != best:
        return None  # the file changed meanwhile: republish instead
    servers = list(broker.get_servers_for_psi(cap.storage_index))
    load = {s.server_id: 0 for s in servers}
    holds = {(sid, sh) for (sid, sh) in [*smap.shares, *smap.bad_shares]}
    for sid, _sh in holds:
        if sid in load:
            load[sid] += 1
    placed = 0
    mutable.own_versions.forget(cap.storage_index)  # its map of the shares no longer holds
    for shnum in missing:
        for server in sorted(servers, key=lambda s: load[s.server_id]):
            if (server.server_id, shnum) in holds:
                continue
            secrets = remote.write_secrets(writekey, lease_secret, cap.storage_index, server)
            vectors = {shnum: SlotWrite([(0, 1, b"eq", b"")], encoded.share_writes(shnum, keys))}
            try:
                result = await remote.test_and_write(server, cap.storage_index, secrets, vectors, [])
            except ServerError:
                continue
            if result.success:
                load[server.server_id] += 1
                holds.add((server.server_id, shnum))
                placed += 1
                break
    return placed
