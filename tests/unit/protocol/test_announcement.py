"""Signed announcements: Tahoe's bytes, round trips, and rejection of anything damaged."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.protocol.announcement import (
    MAX_ANNOUNCEMENT_SIZE,
    BadAnnouncementError,
    Verdict,
    announcement_dict,
    encode,
    judge,
    sign,
    storage_announcement,
    unsign,
)

# Made by Tahoe-LAFS 1.20's IntroducerClient.publish (sequencer -> (7, b"nonce")),
# key = priv-v0-base32(b"\x01" * 32).
TAHOE_ANN_T = (
    b'{"version": 0, "nickname": "nick\\u00e9", "app-versions": [], "my-version": '
    b'"tahoe-lafs/1.20.0", "oldest-supported": "1.0.0", "service-name": "storage", '
    b'"permutation-seed-base32": '
    b'"ojvwk33ipbwhkytipf5gyn3lomzw253upjxxgnlpnrtgo33dny3wi53lmjswon3un5zwkylenzqxa3rvn5qq", '
    b'"anonymous-storage-FURL": "pb://abc@tcp:127.0.0.1:1234/swiss", "seqnum": 7, "nonce": "nonce"}',
    b"v0-ht6ecsbt6ox2rysnjmqq7zlg45bknzcetb47spx6n2nqjl7is2evizzhakxut4gg773cpqpfw6kplijdkdrdzsw7ir22wxpujeuiwca",
    b"v0-rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa",
)

KEY = SigningKey.from_seed(b"\x01" * 32)
OTHER_KEY = SigningKey.from_seed(b"\x02" * 32)


def _tahoe_like() -> dict:
    seed = b2a(KEY.verifying_key().to_string()[len(b"pub-v0-") :])
    ann = storage_announcement("pb://abc@tcp:127.0.0.1:1234/swiss", seed)
    return announcement_dict(
        "storage", ann, nickname="nick\u00e9", my_version="tahoe-lafs/1.20.0", seqnum=7, nonce="nonce"
    )


def test_same_bytes_as_tahoe() -> None:
    assert sign(_tahoe_like(), KEY) == TAHOE_ANN_T


def test_tahoe_announcement_verifies() -> None:
    ann, key_s = unsign(TAHOE_ANN_T)
    assert key_s == KEY.verifying_key().server_id() == TAHOE_ANN_T[2]
    assert ann == _tahoe_like()
    assert list(ann) == [
        "version", "nickname", "app-versions", "my-version", "oldest-supported", "service-name",
        "permutation-seed-base32", "anonymous-storage-FURL", "seqnum", "nonce",
    ]


def test_nurls_are_sorted_and_placed_before_the_furl() -> None:
    ann = storage_announcement("pb://x@y/z", "seed", nurls={"pb://b", "pb://a"})
    assert list(ann) == ["permutation-seed-base32", "anonymous-storage-NURLs", "anonymous-storage-FURL"]
    assert ann["anonymous-storage-NURLs"] == ["pb://a", "pb://b"]


def test_wire_types_are_bytes() -> None:
    ann_t = sign(_tahoe_like(), KEY)
    assert isinstance(ann_t, tuple) and all(isinstance(x, bytes) for x in ann_t)


@pytest.mark.parametrize(
    "ann_t",
    [
        (TAHOE_ANN_T[0], None, None),
        (TAHOE_ANN_T[0], TAHOE_ANN_T[1], None),
        (TAHOE_ANN_T[0], None, TAHOE_ANN_T[2]),
        TAHOE_ANN_T[:2],
        (*TAHOE_ANN_T, b""),
        (TAHOE_ANN_T[0].decode(), TAHOE_ANN_T[1], TAHOE_ANN_T[2]),
        (TAHOE_ANN_T[0], TAHOE_ANN_T[1].decode(), TAHOE_ANN_T[2]),
        (TAHOE_ANN_T[0], TAHOE_ANN_T[1], b"pub-" + TAHOE_ANN_T[2]),
        (TAHOE_ANN_T[0], TAHOE_ANN_T[1], TAHOE_ANN_T[2] + b"\n"),
        (TAHOE_ANN_T[0], b"v1-" + TAHOE_ANN_T[1][3:], TAHOE_ANN_T[2]),
        (TAHOE_ANN_T[0], TAHOE_ANN_T[1], OTHER_KEY.verifying_key().server_id()),
        (TAHOE_ANN_T[0] + b" ", TAHOE_ANN_T[1], TAHOE_ANN_T[2]),
        "not a tuple",
        None,
        {1: 2},
    ],
)
def test_rejects(ann_t: object) -> None:
    with pytest.raises(BadAnnouncementError):
        unsign(ann_t)


def _signed_raw(msg: bytes) -> tuple[bytes, bytes, bytes]:
    return (msg, b"v0-" + b2a(KEY.sign(msg)).encode(), KEY.verifying_key().server_id())


@pytest.mark.parametrize(
    "msg",
    [b"\xff\xfe", b"not json", b"[1, 2]", b'{"seqnum": 1}', b'{"service-name": 3}', b"[" * 100_000],
)
def test_rejects_well_signed_garbage(msg: bytes) -> None:
    with pytest.raises(BadAnnouncementError):
        unsign(_signed_raw(msg))


def test_rejects_oversized() -> None:
    big = {"service-name": "storage", "padding": "x" * MAX_ANNOUNCEMENT_SIZE}
    with pytest.raises(BadAnnouncementError, match="limit"):
        unsign(sign(big, KEY))


def test_encode_refuses_non_json() -> None:
    with pytest.raises(BadAnnouncementError):
        encode({"service-name": "storage", "x": b"bytes"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
announcements = st.builds(
    lambda extra, name: {**extra, "service-name": name},
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    st.text(max_size=12),
)
keys = st.binary(min_size=32, max_size=32).map(SigningKey.from_seed)


@given(announcements, keys)
def test_round_trip(ann: dict, key: SigningKey) -> None:
    ann_t = sign(ann, key)
    assert unsign(ann_t) == (json.loads(ann_t[0]), key.verifying_key().server_id())
    assert unsign(ann_t)[0] == ann


@given(announcements, st.data())
def test_any_flipped_byte_is_rejected(ann: dict, data: st.DataObject) -> None:
    ann_t = sign(ann, KEY)
    field = data.draw(st.integers(0, 2))
    target = bytearray(ann_t[field])
    pos = data.draw(st.integers(0, len(target) - 1))
    target[pos] ^= data.draw(st.integers(1, 255))
    damaged = list(ann_t)
    damaged[field] = bytes(target)
    with pytest.raises(BadAnnouncementError):
        unsign(tuple(damaged))


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=200) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4).map(tuple) | st.lists(children, max_size=4),
    max_leaves=10,
)


@given(anything)
def test_random_input_only_raises_bad_announcement(value: object) -> None:
    try:
        unsign(value)
    except BadAnnouncementError:
        pass


@given(st.binary(max_size=300), st.booleans())
def test_random_signed_message_only_raises_bad_announcement(msg: bytes, as_json: bool) -> None:
    if as_json:
        msg = b'{"service-name": "storage", "x": "' + msg.hex().encode() + b'"}'
    try:
        ann, _ = unsign(_signed_raw(msg))
    except BadAnnouncementError:
        return
    assert isinstance(ann["service-name"], str)


def test_judge_follows_tahoe() -> None:
    a1 = {"service-name": "storage", "seqnum": 1, "nonce": "a"}
    a2 = {"service-name": "storage", "seqnum": 2, "nonce": "b"}
    assert judge(None, a1) is Verdict.NEW
    assert judge(a1, dict(a1)) is Verdict.DUPLICATE
    assert judge(a1, a2) is Verdict.UPDATE
    assert judge(a2, a1) is Verdict.STALE
    assert judge(a1, {**a1, "nonce": "c"}) is Verdict.STALE
    assert judge(a1, {"service-name": "storage"}) is Verdict.NO_SEQNUM
    assert judge(a1, {"service-name": "storage", "seqnum": "9"}) is Verdict.NO_SEQNUM
    # an old announcement without a seqnum is replaced by anything different
    assert judge({"service-name": "storage"}, {"service-name": "storage", "x": 1}) is Verdict.UPDATE
    assert Verdict.NEW.accepted and Verdict.UPDATE.accepted and not Verdict.STALE.accepted
