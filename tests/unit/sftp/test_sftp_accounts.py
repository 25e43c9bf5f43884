"""The SFTP accounts file parser (Tahoe-LAFS 1.20's format, key lines only)."""

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.sftp.accounts import PASSWORD_REFUSED, AccountsError, parse_accounts

CAP = "URI:DIR2:ovjy4yhylqlfoqg2vcze36dhde:4d4f47qko2xm5g7osgo2yyidi5m4muyo2vjjy53q4vjju2u55mfa"


def blob(kind: str, body: bytes) -> bytes:
    return struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", len(body)) + body


def key_text(kind: str = "ssh-ed25519", body: bytes = b"\x01" * 32) -> str:
    return base64.b64encode(blob(kind, body)).decode()


users = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64).filter(
    lambda u: not u.startswith("#"))
comments = st.lists(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=10),
                    max_size=3)


@given(users, st.binary(min_size=1, max_size=64), comments, st.sampled_from(["ssh-ed25519", "ssh-rsa"]))
def test_key_lines_parse(user, body, comment, kind):
    text = f"# a comment\n\n  {user} {kind} {key_text(kind, body)} {' '.join(comment)} {CAP}  \n"
    accounts = parse_accounts(text, "accounts")
    (account,) = accounts.values()
    assert account.user == user
    assert account.key_type == kind and account.key_blob == blob(kind, body)
    assert account.rootcap == CAP
    assert account.key_matches(kind, blob(kind, body))
    assert not account.key_matches(kind, blob(kind, body + b"x"))
    assert CAP not in repr(account)


@given(users, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30).filter(
    lambda p: not p.startswith(("ssh-", "ecdsa-"))))
def test_password_lines_refused_without_the_password_or_cap(user, password):
    with pytest.raises(AccountsError) as info:
        parse_accounts(f"{user} {password} {CAP}\n", "private/accounts")
    message = str(info.value)
    # one fixed sentence after the place: it can carry neither the password nor the cap
    assert message == f"private/accounts line 1: {PASSWORD_REFUSED}"
    assert CAP not in message


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        accounts = parse_accounts(text)
    except AccountsError as e:
        assert "line" in str(e)
    else:
        for account in accounts.values():
            assert account.rootcap.startswith("URI:")


@pytest.mark.parametrize("line, problem", [
    (f"alice ssh-ed25519 {key_text()}", "expected USER"),
    (f"alice ssh-ed25519 !!notbase64 {CAP}", "not base64"),
    (f"alice ssh-rsa {key_text('ssh-ed25519')} {CAP}", "not a ssh-rsa key"),
    (f"alice ssh-foo {key_text('ssh-foo')} {CAP}", "unsupported key type"),
    (f"alice ssh-ed25519 {key_text()} not-a-cap", "root directory cap"),
    (f"{'a' * 65} ssh-ed25519 {key_text()} {CAP}", "user name"),
])
def test_bad_lines(line, problem):
    with pytest.raises(AccountsError, match=problem):
        parse_accounts(line + "\n")


def test_user_twice_refused():
    line = f"alice ssh-ed25519 {key_text()} {CAP}\n"
    with pytest.raises(AccountsError, match="line 2: user 'alice' is listed twice"):
        parse_accounts(line + line)
