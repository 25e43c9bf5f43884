"""Pure parts of the BlobManager: blob encryption laid out as Soledad's (preamble,
GCM, trailing tag), the /stream framing, the SQLite state machine and priority
queue, and the retry pauses."""

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.apps.blobmanager import crypto
from shoal.apps.blobmanager.cache import LocalCache, Priority, SyncStatus
from shoal.apps.blobmanager.errors import FramingError, InvalidBlobError
from shoal.apps.blobmanager.framing import (
    DownloadParser,
    decode_download,
    decode_upload,
    encode_download,
    encode_upload,
)
from shoal.apps.blobmanager.retry import RetryPolicy

SECRET = bytes(range(256)) * 2
IDS = st.from_regex(r"[a-zA-Z0-9_-]{1,40}", fullmatch=True)


def test_soledad_numbers():
    assert [s.value for s in SyncStatus] == [1, 2, 3, 4, 5, 6, 7]
    assert [s.name for s in SyncStatus] == ["SYNCED", "PENDING_UPLOAD", "PENDING_DOWNLOAD", "FAILED_UPLOAD",
                                            "FAILED_DOWNLOAD", "PENDING_DELETE", "LOCAL_ONLY"]
    assert (Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.URGENT, Priority.DEFAULT) == (1, 2, 3, 4, 2)
    assert crypto.PREAMBLE.size == struct.calcsize("2sbbQ16s255p255pQ")


@given(IDS, st.binary(max_size=3000))
def test_encrypt_roundtrip_and_layout(blob_id, plaintext):
    stored = crypto.encrypt_blob(SECRET, blob_id, plaintext)
    head, _, body = stored.partition(b" ")
    pre = crypto.unpack_preamble(base64.urlsafe_b64decode(head))
    assert (pre.scheme, pre.method, pre.blob_id, pre.size) == (1, 2, blob_id, crypto.padded_size(len(plaintext)))
    assert len(body) == len(plaintext) + 16
    assert crypto.tag_of(stored) == base64.urlsafe_b64encode(stored[-16:]).decode()
    assert len(crypto.tag_of(stored)) == 24
    assert crypto.decrypt_blob(SECRET, blob_id, stored) == plaintext


def test_ciphertext_hides_plaintext_and_keys_differ():
    plaintext = b"attachment " * 100
    stored = crypto.encrypt_blob(SECRET, "a1", plaintext)
    assert b"attachment" not in stored
    assert crypto.blob_key(SECRET, "a1") != crypto.blob_key(SECRET, "a2")
    assert crypto.blob_key(SECRET, "a1") == crypto.blob_key(SECRET[:256] + SECRET[256:], "a1")
    # only the secret after its first 64 bytes keys the blobs (Soledad's SECRET_LENGTH)
    assert crypto.blob_key(b"x" * 64 + SECRET[64:], "a1") == crypto.blob_key(SECRET, "a1")
    assert crypto.blob_key(SECRET[:64] + b"x" + SECRET[65:], "a1") != crypto.blob_key(SECRET, "a1")
    with pytest.raises(ValueError):
        crypto.blob_key(b"short", "a1")


def test_wrong_key_id_or_bytes_fail_the_mac():
    stored = crypto.encrypt_blob(SECRET, "blob1", b"secret mail")
    other = bytes(reversed(SECRET))
    with pytest.raises(InvalidBlobError, match="MAC"):
        crypto.decrypt_blob(other, "blob1", stored)
    with pytest.raises(InvalidBlobError, match="names blob"):
        crypto.decrypt_blob(SECRET, "blob2", stored)
    flipped = stored[:-20] + bytes([stored[-20] ^ 1]) + stored[-19:]
    with pytest.raises(InvalidBlobError, match="MAC"):
        crypto.decrypt_blob(SECRET, "blob1", flipped)
    with pytest.raises(InvalidBlobError):
        crypto.decrypt_blob(SECRET, "blob1", b"no-space-here")
    # the preamble is associated data: change its timestamp and the MAC fails
    head, _, body = stored.partition(b" ")
    pre = crypto.unpack_preamble(base64.urlsafe_b64decode(head))
    forged = crypto.Preamble(pre.timestamp + 1, pre.iv, pre.blob_id, pre.revision, pre.size).pack()
    with pytest.raises(InvalidBlobError, match="MAC"):
        crypto.decrypt_blob(SECRET, "blob1", base64.urlsafe_b64encode(forged) + b" " + body)


@given(st.lists(st.tuples(IDS, st.binary(min_size=16, max_size=300)), max_size=8), st.integers(1, 50))
def test_stream_framing_roundtrip(blobs, chunk):
    assert decode_upload(encode_upload(blobs)) == blobs
    body = encode_download([data for _, data in blobs])
    parser = DownloadParser()
    got = []
    for i in range(0, len(body), chunk):
        got.extend(parser.feed(body[i:i + chunk]))
    parser.close()
    assert [data for _, data in got] == [data for _, data in blobs]
    assert [tag for tag, _ in got] == [crypto.tag_of(data) for _, data in blobs]


def test_stream_framing_exact_bytes_and_errors():
    data = b"x" * 16 + b"T" * 16
    tag = base64.urlsafe_b64encode(b"T" * 16)
    assert encode_download([data]) == b"00000020" + tag + b" " + data
    assert encode_upload([("a", b"12"), ("b", b"345")]) == b'[["a", 2], ["b", 3]]\n12345'
    with pytest.raises(FramingError):
        decode_download(b"zzzzzzzz" + tag + b" " + data)
    with pytest.raises(FramingError):
        decode_download(b"00000020" + tag + b" " + data[:-1])
    with pytest.raises(FramingError):
        decode_upload(b'[["a", 5]]\n12')


def test_cache_states_and_priority_queue(tmp_path):
    cache = LocalCache(str(tmp_path / "u_blobs.db"))
    cache.put("", "low", b"L", SyncStatus.PENDING_UPLOAD, Priority.LOW)
    cache.put("", "urgent", b"U", SyncStatus.PENDING_UPLOAD, Priority.URGENT)
    cache.put("", "medium1", b"M", SyncStatus.PENDING_UPLOAD)
    cache.put("", "medium2", b"M", SyncStatus.PENDING_UPLOAD)
    cache.set_status("", "dl", SyncStatus.PENDING_DOWNLOAD, Priority.HIGH)
    cache.put("ns", "other", b"O", SyncStatus.LOCAL_ONLY)
    order = []
    while (nxt := cache.next_in_queue("", [SyncStatus.PENDING_UPLOAD], set(order))) is not None:
        order.append(nxt)
    assert order == ["urgent", "medium1", "medium2", "low"]
    cache.set_priority("", "low", Priority.URGENT)
    assert cache.next_in_queue("", [SyncStatus.PENDING_UPLOAD], {"urgent"}) == "low"
    assert cache.get("", "dl") is None and not cache.has_payload("", "dl")
    assert cache.status("", "dl") == (SyncStatus.PENDING_DOWNLOAD, Priority.HIGH, 0)
    assert cache.count_retry("", "dl") == 1
    cache.set_status("", "dl", SyncStatus.FAILED_DOWNLOAD)
    assert cache.status("", "dl") == (SyncStatus.FAILED_DOWNLOAD, Priority.HIGH, 0)  # priority kept
    cache.set_statuses("", ["medium1", "medium2"], SyncStatus.SYNCED)
    progress = cache.progress("")
    assert progress["SYNCED"] == 2 and progress["PENDING_UPLOAD"] == 2 and progress["FAILED_DOWNLOAD"] == 1
    assert progress["LOCAL_ONLY"] == 0 and cache.progress("ns")["LOCAL_ONLY"] == 1
    cache.delete("", "urgent")
    assert cache.status("", "urgent") is None
    cache.close()
    reopened = LocalCache(str(tmp_path / "u_blobs.db"))
    assert reopened.get("", "low") == b"L"
    assert reopened.list_ids("", SyncStatus.PENDING_UPLOAD) == ["low"]
    reopened.close()


def test_retry_pauses_grow_to_the_cap():
    soledad = RetryPolicy()
    assert [soledad.pause(n) for n in range(1, 9)] == [1, 11, 21, 31, 41, 51, 60, 60]
    fast = RetryPolicy(first=0.01, step=0.02, maximum=0.05)
    assert [fast.pause(n) for n in (1, 2, 3, 10)] == pytest.approx([0.01, 0.03, 0.05, 0.05])


def test_priorities_as_soledad_parses_them():
    from shoal.apps.blobmanager import parse_priority
    assert [parse_priority(p) for p in ("low", "medium", "high", "urgent")] == [1, 2, 3, 4]
    assert [parse_priority(p) for p in (1, 2, 3, 4)] == [1, 2, 3, 4]
    for bad in (0, 5, "LOW", "critical", "", None, 2.0, True):
        with pytest.raises(ValueError):
            parse_priority(bad)


def test_cert_file_pins_the_ca_or_fails_in_one_line(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from twisted.internet import reactor
    from twisted.web.client import BrowserLikePolicyForHTTPS

    from shoal.apps.blobmanager.errors import BlobManagerError
    from shoal.apps.blobmanager.remote import BlobsRemote

    with pytest.raises(BlobManagerError, match="cert_file .*missing.pem: not a readable PEM"):
        BlobsRemote(reactor, "https://x/blobs/", "u", cert_file=str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(BlobManagerError, match="junk.pem"):
        BlobsRemote(reactor, "https://x/blobs/", "u", cert_file=str(tmp_path / "junk.pem"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soledad-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    remote = BlobsRemote(reactor, "https://x/blobs/", "u", cert_file=str(tmp_path / "ca.pem"))
    policy = remote.agent._endpointFactory._policyForHTTPS
    assert isinstance(policy, BrowserLikePolicyForHTTPS) and policy._trustRoot is not None
