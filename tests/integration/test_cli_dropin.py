"""Issue #18, CLI: `put --private-key-path`, `cp --caps-only`, `webopen`, and `backup`
keeping Tahoe 1.20's private/backupdb.sqlite, run as real processes against the shared
grid's client node."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
from urllib.parse import quote

import pytest

from shoal.caps.mutable import mutable_caps_from_private_key
from shoal.crypto import rsa
from tests.integration.test_cli import ok, shoal_cli


@pytest.fixture(scope="module")
def client(shared_grid) -> str:
    nodedir = shared_grid.client.nodedir
    if "dropin:" not in ok(shoal_cli(nodedir, "list-aliases")):
        ok(shoal_cli(nodedir, "create-alias", "dropin"))
    return nodedir


def pem_key(tmp_path, bits: int = 2048) -> tuple[rsa.PrivateKey, str]:
    key = rsa.generate_private_key(bits)
    path = tmp_path / f"key{bits}.pem"
    path.write_bytes(key.key.export_key(format="PEM", pkcs=8))
    return key, str(path)


@pytest.mark.parametrize("flags,mdmf", [(["--mutable"], False), (["--format=MDMF"], True), (["--format=sdmf"], False)])
def test_put_with_private_key_path_gives_that_keys_cap(client, tmp_path, flags, mdmf):
    key, path = pem_key(tmp_path)
    (tmp_path / "f").write_bytes(b"signed by my key\n")
    cap = ok(shoal_cli(client, "put", *flags, "--private-key-path", path, str(tmp_path / "f")))
    assert cap == mutable_caps_from_private_key(key, mdmf)[0].to_string()
    assert shoal_cli(client, "get", cap).stdout == b"signed by my key\n"


def test_put_with_private_key_path_linked(client, tmp_path):
    key, path = pem_key(tmp_path)
    cap = ok(shoal_cli(client, "put", "--format=MDMF", "--private-key-path", path, "-", "dropin:keyed.txt",
                       stdin=b"linked"))
    assert cap == mutable_caps_from_private_key(key, True)[0].to_string()
    assert shoal_cli(client, "get", "dropin:keyed.txt").stdout == b"linked"


def test_private_key_path_refusals(client, tmp_path):
    _, path = pem_key(tmp_path)
    r = shoal_cli(client, "put", "--private-key-path", path, stdin=b"x")  # immutable
    assert r.returncode == 2 and b"mutable files only" in r.stderr
    r = shoal_cli(client, "put", "--mutable", "--private-key-path", str(tmp_path / "missing.pem"), stdin=b"x")
    assert r.returncode == 2 and b"missing.pem" in r.stderr
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    r = shoal_cli(client, "put", "--mutable", "--private-key-path", str(tmp_path / "junk.pem"), stdin=b"x")
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
    _, small = pem_key(tmp_path, 1024)
    r = shoal_cli(client, "put", "--mutable", "--private-key-path", small, stdin=b"x")
    assert r.returncode == 2 and b"2048" in r.stderr


def test_cp_caps_only_writes_read_caps(client, tmp_path):
    (tmp_path / "a.bin").write_bytes(os.urandom(3000))
    file_cap = ok(shoal_cli(client, "put", str(tmp_path / "a.bin"), "dropin:caps/a.bin"))
    mutable = ok(shoal_cli(client, "put", "--mutable", "-", "dropin:caps/m.txt", stdin=b"mutable"))
    ok(shoal_cli(client, "cp", "-r", "--caps-only", "dropin:caps", str(tmp_path / "out")))
    assert (tmp_path / "out" / "caps" / "a.bin").read_bytes() == file_cap.encode()
    ro = json.loads(ok(shoal_cli(client, "ls", "--json", "dropin:caps/m.txt")))[1]["ro_uri"]
    assert (tmp_path / "out" / "caps" / "m.txt").read_bytes() == ro.encode() != mutable.encode()
    ok(shoal_cli(client, "cp", "dropin:caps/a.bin", str(tmp_path / "plain.bin")))  # without it: the bytes
    assert (tmp_path / "plain.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()


def test_webopen_hands_the_url_to_the_browser(client, tmp_path):
    seen = tmp_path / "seen.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys\nopen({str(seen)!r}, 'a').write(sys.argv[1] + '\\n')\n")
    env = {**os.environ, "BROWSER": f"{sys.executable} {browser} %s"}
    url = open(os.path.join(client, "node.url")).read().strip()
    root = json.loads(ok(shoal_cli(client, "list-aliases", "--json")))["dropin"]
    for args in ([], ["dropin:caps/a.bin"], ["-i", "dropin:"]):
        r = subprocess.run([sys.executable, "-m", "shoal.main", "-d", client, "webopen", *args],
                           capture_output=True, env=env, timeout=60)
        assert r.returncode == 0 and r.stdout == b"", r.stderr
    root_cap = root["readwrite"] if isinstance(root, dict) else root
    assert seen.read_text().splitlines() == [
        url, f"{url}uri/{quote(root_cap, safe='')}/caps/a.bin", f"{url}uri/{quote(root_cap, safe='')}?t=info"]


def test_backup_keeps_tahoes_backupdb(client, tmp_path):
    src = tmp_path / "home"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 2000)
    (src / "sub" / "b.txt").write_bytes(b"b" * 3000)
    first = json.loads(ok(shoal_cli(client, "backup", "--json", str(src), "dropin:bk")))
    assert (first["files-uploaded"], first["files-reused"], first["directories"]) == (2, 0, 2)
    db_path = os.path.join(client, "private", "backupdb.sqlite")
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    db = sqlite3.connect(db_path)
    rows = {path: (size, mtime, ctime) for path, size, mtime, ctime, _ in db.execute("SELECT * FROM local_files")}
    st = os.stat(src / "a.txt")
    assert rows[str(src / "a.txt")] == (2000, int(st.st_mtime), int(st.st_ctime))  # whole seconds, as Tahoe
    assert all(isinstance(cap, bytes) for (cap,) in db.execute("SELECT filecap FROM caps"))
    assert db.execute("SELECT version FROM version").fetchall() == [(2,)]
    db.close()
    second = json.loads(ok(shoal_cli(client, "backup", "--json", str(src), "dropin:bk")))
    assert (second["files-uploaded"], second["files-reused"]) == (0, 2)
    assert (second["directories"], second["directories-reused"]) == (0, 2)  # same children: same dircaps
    assert second["cap"] == first["cap"]
    os.utime(src / "sub" / "b.txt", (1, 1))
    third = json.loads(ok(shoal_cli(client, "backup", "--json", str(src), "dropin:bk")))
    assert (third["files-uploaded"], third["files-reused"]) == (1, 1)
    assert third["directories"] == 0  # the contents (caps) did not change: convergent caps, same dirs
