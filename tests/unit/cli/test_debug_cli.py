"""`shoal debug encode|decode|dump-cap`, run as a real process."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import vector_plaintext

SHOAL = [sys.executable, "-m", "shoal.main"]


def shoal(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SHOAL, *args], input=stdin, capture_output=True, timeout=120)


@pytest.fixture
def secret_file(tmp_path: pathlib.Path) -> pathlib.Path:
    p = tmp_path / "secret"
    p.write_bytes(b"shoal-test-vectors-convergence!!")
    return p


def encode(tmp_path, secret_file, data: bytes, *extra: str) -> tuple[str, pathlib.Path]:
    src = tmp_path / "input"
    src.write_bytes(data)
    shares = tmp_path / "shares"
    r = shoal("debug", "encode", "--convergence-secret-file", str(secret_file),
              "--shares-dir", str(shares), *extra, str(src))
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip(), shares


def test_encode_matches_tahoe_vector_and_decodes(tmp_path, secret_file, tahoe_vectors):
    case = next(c for c in tahoe_vectors["immutable"] if c["plaintext"]["size"] == 131073 and c["k"] == 3)
    data = vector_plaintext(case["plaintext"]["seed"], 131073)
    cap, shares = encode(tmp_path, secret_file, data, "--needed", "3", "--happy", "7", "--total", "10")
    assert cap == case["cap"]
    assert sorted(os.listdir(shares)) == sorted(str(i) for i in range(10))
    r = shoal("debug", "decode", "--shares-dir", str(shares), cap)
    assert r.returncode == 0 and r.stdout == data


def test_decode_survives_missing_and_corrupt_shares(tmp_path, secret_file):
    data = os.urandom(300_000)
    cap, shares = encode(tmp_path, secret_file, data, "--needed", "2", "--total", "4",
                         "--happy", "2", "--max-segment-size", "65536")
    (shares / "0").unlink()
    raw = bytearray((shares / "1").read_bytes())
    raw[5000] ^= 0xFF
    (shares / "1").write_bytes(bytes(raw))
    r = shoal("debug", "decode", "--shares-dir", str(shares), cap)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_decode_with_too_few_good_shares_fails_clearly(tmp_path, secret_file):
    data = os.urandom(10_000)
    cap, shares = encode(tmp_path, secret_file, data, "--needed", "3", "--total", "4", "--happy", "3")
    (shares / "0").unlink()
    raw = bytearray((shares / "2").read_bytes())
    raw[100] ^= 1
    (shares / "2").write_bytes(bytes(raw))
    r = shoal("debug", "decode", "--shares-dir", str(shares), cap)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "need 3" in err and "share 2" in err and "Traceback" not in err
    assert r.stdout == b""


def test_small_files_are_literal(tmp_path, secret_file):
    cap, shares = encode(tmp_path, secret_file, b"hello shoal")
    assert cap.startswith("URI:LIT:")
    r = shoal("debug", "decode", "--shares-dir", str(tmp_path), cap)
    assert r.stdout == b"hello shoal"


def test_encode_from_stdin(tmp_path, secret_file):
    data = os.urandom(5000)
    src_cap, _ = encode(tmp_path, secret_file, data)
    r = shoal("debug", "encode", "--convergence-secret-file", str(secret_file), "-", stdin=data)
    assert r.returncode == 0 and r.stdout.decode().strip() == src_cap


def test_dump_cap(tmp_path, secret_file, tahoe_vectors):
    case = next(c for c in tahoe_vectors["immutable"] if c["cap"].startswith("URI:CHK:"))
    r = shoal("debug", "dump-cap", case["cap"])
    out = r.stdout.decode()
    assert r.returncode == 0
    assert case["storage_index_b32"] in out and "size:" in out and str(case["plaintext"]["size"]) in out


@pytest.mark.parametrize("bad", ["URI:CHK:nonsense", "URI:CHK:" + "a" * 26 + ":" + "b" * 52 + ":3:2:100"])
def test_malformed_cap_is_one_line_error(bad, tmp_path):
    r = shoal("debug", "decode", "--shares-dir", str(tmp_path), bad)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "Traceback" not in err and err.count("\n") == 1


def test_missing_input_file(tmp_path, secret_file):
    r = shoal("debug", "encode", "--convergence-secret-file", str(secret_file), str(tmp_path / "nope"))
    assert r.returncode != 0 and "Traceback" not in r.stderr.decode()
