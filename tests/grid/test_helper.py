"""The upload helper (shoal.immutable.helper) and the assisted uploader
(shoal.immutable.assisted_upload) against real storage servers in process
(LocalGrid): the cap equals a direct upload's, the helper fetches the
ciphertext once, a file already in the grid sends nothing, an interrupted
fetch resumes from what CHK_incoming holds, bad client numbers are refused."""

import io
import os
from typing import Any

import pytest
from twisted.internet import defer

from shoal.caps import parse_cap
from shoal.crypto import hashes
from shoal.crypto.aes import aes_ctr
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.immutable.assisted_upload import EncryptedSource, assisted_upload
from shoal.immutable.download import download
from shoal.immutable.encoder import encode_all
from shoal.immutable.helper import BadUploadable, Helper, HelperError
from shoal.immutable.params import EncodingParams, FileShape
from shoal.immutable.upload import ExistingSharesError, UploadResult, upload
from shoal.protocol.helper import HelperResults, UploadResultsCopy
from shoal.testing.local_grid import LocalGrid

SECRET = b"helper-tests-convergence-secret!"
LEASE = b"helper-tests-lease-secret-32byte"
PARAMS = EncodingParams(3, 7, 10, 64 * 1024)


@pytest.fixture
def grid():
    with LocalGrid(10) as g:
        yield g


def make_helper(grid: LocalGrid, tmp_path: Any, chunk_size: int = 32 * 1024) -> Helper:
    return grid.call(lambda: Helper(str(tmp_path / "helper"), grid.broker, LEASE, chunk_size=chunk_size))


def through(grid: LocalGrid, helper: Any, data: bytes, params: EncodingParams = PARAMS) -> UploadResult:
    return grid.call(lambda: defer.ensureDeferred(assisted_upload(
        helper, io.BytesIO(data), len(data), params=params, convergence_secret=SECRET)))


def fetch(grid: LocalGrid, cap: str) -> bytes:
    out = bytearray()
    grid.call(lambda: defer.ensureDeferred(download(grid.broker, parse_cap(cap), out.extend)))
    return bytes(out)


def expected_cap(data: bytes, params: EncodingParams = PARAMS) -> str:
    shape = FileShape(len(data), params.k, params.n, params.segment_size_for(len(data)))
    key = convergent_key([data], SECRET, shape.k, shape.n, shape.segment_size)
    return encode_all(key, shape, [data])[1].cap.to_string()


def test_upload_through_helper_gives_the_direct_cap_and_sends_the_file_once(grid, tmp_path):
    data = os.urandom(300_000)
    helper = make_helper(grid, tmp_path)
    result = through(grid, helper, data)
    assert result.cap == expected_cap(data)
    assert result.bytes_pushed == len(data)  # ciphertext sent by the client: 1x
    assert result.pushed_shares == 10 and len(result.sharemap) == 10
    assert fetch(grid, result.cap) == data
    stats = grid.call(helper.stats)
    assert stats["chk_upload_helper.fetched_bytes"] == len(data)
    assert stats["chk_upload_helper.encoded_bytes"] == len(data)
    assert stats["chk_upload_helper.upload_need_upload"] == 1
    assert stats["chk_upload_helper.active_uploads"] == 0
    assert stats["chk_upload_helper.incoming_count"] == stats["chk_upload_helper.encoding_count"] == 0
    # a direct upload of the same file finds every share and pushes nothing
    direct = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, io.BytesIO(data), len(data), params=PARAMS, convergence_secret=SECRET, lease_secret=LEASE)))
    assert direct.cap == result.cap and direct.pushed_shares == 0


def test_a_file_already_in_the_grid_sends_nothing(grid, tmp_path):
    data = os.urandom(100_000)
    direct = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, io.BytesIO(data), len(data), params=PARAMS, convergence_secret=SECRET, lease_secret=LEASE)))
    helper = make_helper(grid, tmp_path)
    result = through(grid, helper, data)
    assert result.cap == direct.cap
    assert result.bytes_pushed == 0 and result.pushed_shares == 0 and result.preexisting_shares == 10
    stats = grid.call(helper.stats)
    assert stats["chk_upload_helper.upload_already_present"] == 1
    assert stats["chk_upload_helper.fetched_bytes"] == 0


class Breaking(EncryptedSource):
    """A client whose connection breaks after `limit` bytes of ciphertext were sent."""

    def __init__(self, *args: Any, limit: int) -> None:
        super().__init__(*args)
        self.limit = limit
        self.offsets: list[int] = []

    async def read_encrypted(self, offset: int, length: int) -> list[bytes]:
        self.offsets.append(offset)
        if self.bytes_sent >= self.limit:
            raise ConnectionError("connection lost")
        return await super().read_encrypted(offset, length)


def test_an_interrupted_fetch_resumes_where_it_stopped(grid, tmp_path):
    data = os.urandom(400_000)
    params = PARAMS
    shape = FileShape(len(data), params.k, params.n, params.segment_size_for(len(data)))
    key = convergent_key([data], SECRET, shape.k, shape.n, shape.segment_size)
    si = hashes.storage_index_hash(key)
    helper = make_helper(grid, tmp_path)
    broken = Breaking(io.BytesIO(data), 0, len(data), key, params, limit=150_000)

    async def first() -> None:
        _, uh = await helper.upload_chk(si)
        await uh.upload(broken)

    with pytest.raises(HelperError, match="client went away"):
        grid.call(lambda: defer.ensureDeferred(first()))
    incoming = tmp_path / "helper" / "CHK_incoming" / b2a(si)
    have = incoming.stat().st_size
    assert have == broken.bytes_sent and 150_000 <= have < len(data)
    assert grid.call(lambda: helper.active) == {}

    # the client comes back (or restarts and hashes the same file again): only the rest is sent
    result = through(grid, helper, data)
    assert result.bytes_pushed == len(data) - have
    assert result.cap == expected_cap(data)
    assert fetch(grid, result.cap) == data
    stats = grid.call(helper.stats)
    assert stats["chk_upload_helper.resumes"] == 1
    assert stats["chk_upload_helper.fetched_bytes"] == len(data)
    assert not incoming.exists()


@pytest.mark.parametrize("answer, match", [
    ((0, 1, 1, 3), "k 0"),
    ((3, 11, 10, 3000), "happy 11 is above n"),
    ((3, 7, 10, 3001), "not a multiple of k"),
    ((3, 7, 300, 3000), "n 300"),
    ((3, 7, 10, 10**9), "segment size"),
    ("nonsense", "did not answer"),
])
def test_bad_encoding_parameters_are_refused(grid, tmp_path, answer, match):
    data = os.urandom(10_000)
    helper = make_helper(grid, tmp_path)
    reader = EncryptedSource(io.BytesIO(data), 0, len(data), os.urandom(16), PARAMS)
    reader.parameters = answer  # type: ignore[assignment]

    async def go() -> None:
        _, uh = await helper.upload_chk(os.urandom(16))
        await uh.upload(reader)

    with pytest.raises(BadUploadable, match=match):
        grid.call(lambda: defer.ensureDeferred(go()))
    assert grid.call(lambda: helper.active) == {}
    # nothing was placed: no server holds a share
    assert all(not s.share_files() for s in grid.servers)


def test_a_reader_that_answers_too_much_is_refused(grid, tmp_path):
    data = os.urandom(10_000)
    helper = make_helper(grid, tmp_path)

    class Liar(EncryptedSource):
        async def read_encrypted(self, offset: int, length: int) -> list[bytes]:
            return [b"x" * (length + 1)]

    reader = Liar(io.BytesIO(data), 0, len(data), os.urandom(16), PARAMS)

    async def go() -> None:
        _, uh = await helper.upload_chk(os.urandom(16))
        await uh.upload(reader)

    with pytest.raises(BadUploadable, match="answered"):
        grid.call(lambda: defer.ensureDeferred(go()))


def test_upload_results_copy_round_trip():
    r = HelperResults(uri_extension_hash=b"h" * 32, uri_extension_data={"size": 5, "codec_name": b"crs"},
                      sharemap={0: frozenset({b"v0-a"}), 1: frozenset({b"v0-b"})}, preexisting_shares=2,
                      pushed_shares=0, timings={"total": 1.5})
    wire = UploadResultsCopy.from_results(r)
    back = UploadResultsCopy()
    back.setCopyableState(wire.getStateToCopy())
    assert back.to_results() == r
    bad = UploadResultsCopy()
    bad.setCopyableState({"uri_extension_hash": b"short"})
    with pytest.raises(ValueError, match="uri_extension_hash"):
        bad.to_results()


def test_shares_whose_uebs_disagree_do_not_count_as_in_the_grid(grid, tmp_path):
    data = os.urandom(100_000)
    direct = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, io.BytesIO(data), len(data), params=PARAMS, convergence_secret=SECRET, lease_secret=LEASE)))
    for i in range(len(grid.servers)):  # each server alters a different byte of long reads (the UEB)
        def lie(offset: int, chunk: bytes, i: int = i) -> bytes:
            if offset == 0 or len(chunk) < 64:
                return chunk
            out = bytearray(chunk)
            out[-(i + 1)] ^= 1
            return bytes(out)

        grid.set_lying(i, reads=lie)
    helper = make_helper(grid, tmp_path)
    with pytest.raises(ExistingSharesError, match="different URI extension blocks"):
        through(grid, helper, data)
    stats = grid.call(helper.stats)
    assert stats["chk_upload_helper.upload_already_present"] == 0
    assert stats["chk_upload_helper.upload_need_upload"] == 1
    for i in range(len(grid.servers)):
        grid.set_lying(i, reads=None)
    assert through(grid, helper, data).cap == direct.cap  # honest again: found in the grid


def test_concurrent_reads_of_the_encrypted_source_each_get_their_own_bytes(grid):
    data = os.urandom(600_000)
    key = os.urandom(16)
    source = EncryptedSource(io.BytesIO(data), 0, len(data), key, PARAMS)
    wanted = [(0, 150_000), (450_000, 150_000), (150_000, 300_000), (599_990, 100), (10, 20)]

    def all_at_once() -> Any:
        return defer.gatherResults([defer.ensureDeferred(source.read_encrypted(o, n)) for o, n in wanted])

    answers = grid.call(all_at_once)
    for (offset, length), answer in zip(wanted, answers, strict=True):
        assert b"".join(answer) == aes_ctr(key, data[offset:offset + length], offset)
    assert source.bytes_sent == sum(min(n, len(data) - o) for o, n in wanted)


def test_a_busy_helper_refuses_more_uploads_and_a_file_too_large_for_its_disk(grid, tmp_path):
    helper = grid.call(lambda: Helper(str(tmp_path / "helper"), grid.broker, LEASE, max_active=1))
    first, second = os.urandom(16), os.urandom(16)
    _, uh = grid.call(lambda: defer.ensureDeferred(helper.upload_chk(first)))
    assert uh is not None
    with pytest.raises(HelperError, match="busy"):
        grid.call(lambda: defer.ensureDeferred(helper.upload_chk(second)))
    # the running one may still be asked for again
    assert grid.call(lambda: defer.ensureDeferred(helper.upload_chk(first)))[1] is uh

    class Huge(EncryptedSource):
        async def get_size(self) -> int:
            return 2**49

    reader = Huge(io.BytesIO(b""), 0, 100, os.urandom(16), PARAMS)
    with pytest.raises(HelperError, match="disk free"):
        grid.call(lambda: uh.upload(reader))
    assert grid.call(lambda: helper.active) == {}
    assert not os.listdir(tmp_path / "helper" / "CHK_incoming")
