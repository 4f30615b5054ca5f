"""Redacted ledgers: identifiers become keyed hashes (HMAC-SHA256) that nobody without the key can reverse.

Every test points the config folder (where the installation's key is made) at its own tmp_path: none writes
to the real home.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import CHORDOMA, ROOT, run_cli

from lettergen import api
from lettergen.provenance.redact import KEY_ENV, SALT_ENV, key_path, redaction_key, token

LEDGER = "chordoma-gluteal-001.lmn.ledger.json"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SALT_ENV, raising=False)
    return tmp_path / "config"


def _draft(out: Path) -> str:
    code, _, stderr = run_cli("draft", str(CHORDOMA), "-o", str(out), "--redact-ledger", "--date", "2026-11-21")
    assert code == 0, stderr
    return (out / LEDGER).read_text()


def _digests(ledger: str) -> set[str]:
    return set(re.findall(r"sha256:([0-9a-f]{64})/", ledger))


def test_a_birth_date_is_not_recovered_by_hashing_every_date(config: Path, tmp_path: Path) -> None:
    # With LETTERGEN_REDACT_SALT unset (the default) the token of a birth date was the plain sha256 of the date:
    # hashing every day from 1900 gave it back in a tenth of a second.
    ledger = _draft(tmp_path / "out")
    birth = api.load_case(CHORDOMA).case.patient.birth_date.isoformat()
    assert birth not in ledger
    found = _digests(ledger)
    day, days = date(1900, 1, 1), []
    while day <= date(2026, 12, 31):
        days.append(day.isoformat())
        day += timedelta(days=1)
    for salt in ("", "lettergen"):  # unsalted, and salted with anything an attacker could guess
        dictionary = {hashlib.sha256((salt + d).encode()).hexdigest() for d in days}
        dictionary |= {hmac.new(salt.encode(), d.encode(), hashlib.sha256).hexdigest() for d in days}
        assert not found & dictionary
    # ...while whoever holds the installation's key can check the token
    key = (config / "lettergen" / "redact.key").read_bytes().strip()
    assert hmac.new(key, birth.encode(), hashlib.sha256).hexdigest() in found


def test_the_key_is_made_once_owner_only_and_reused(config: Path, tmp_path: Path) -> None:
    path = config / "lettergen" / "redact.key"
    assert key_path() == path and not path.exists()
    first = _draft(tmp_path / "a")
    mode = path.stat().st_mode
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_text().strip()) == 64
    assert _draft(tmp_path / "b") == first  # the same key: the same ledger, byte for byte
    assert [p.name for p in path.parent.iterdir()] == ["redact.key"]  # no temporary file left


def test_without_xdg_config_home_the_key_is_in_the_home_config(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert key_path() == tmp_path / "home" / ".config" / "lettergen" / "redact.key"
    redaction_key()
    assert key_path().exists()


def test_processes_that_start_together_agree_on_one_key(config: Path) -> None:
    code = "from lettergen.provenance.redact import redaction_key; print(redaction_key().decode())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)
    ]
    keys = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert keys == {(config / "lettergen" / "redact.key").read_text().strip()}


def test_the_variable_gives_the_key_and_moves_ledgers_between_machines(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-site-wide-key-0123456789abcdef")
    ledger = _draft(tmp_path / "a")
    assert not (config / "lettergen" / "redact.key").exists()  # no key file is made when the variable is set
    name = api.load_case(CHORDOMA).case.patient.name
    assert token(name, "a-site-wide-key-0123456789abcdef") in ledger
    # the older variable still works, as the key: the same key gives the same ledger
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv(SALT_ENV, "a-site-wide-key-0123456789abcdef")
    assert _draft(tmp_path / "b") == ledger
    # a copied key file does too
    monkeypatch.delenv(SALT_ENV)
    path = config / "lettergen" / "redact.key"
    path.parent.mkdir(parents=True)
    path.write_text("a-site-wide-key-0123456789abcdef\n")
    path.chmod(0o600)
    assert _draft(tmp_path / "c") == ledger


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("short-variable", "at least 16 characters"),
        ("readable-by-others", "others can read the redaction key"),
        ("not-a-file", "not a regular file"),
        ("fifo", "not a regular file"),
        ("too-short", "not a redaction key"),
        ("unwritable", "cannot make the redaction key"),
        ("folder-is-a-file", "the redaction key (Not a directory)"),
    ],
)
def test_a_bad_key_is_exit_3_with_one_line(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, fragment: str
) -> None:
    path = config / "lettergen" / "redact.key"
    path.parent.mkdir(parents=True)
    if setup == "short-variable":
        monkeypatch.setenv(KEY_ENV, "short")
    elif setup == "readable-by-others":
        path.write_text("k" * 64)
        path.chmod(0o644)
    elif setup == "not-a-file":
        path.mkdir()
    elif setup == "fifo":
        os.mkfifo(path)
    elif setup == "too-short":
        path.write_text("k")
        path.chmod(0o600)
    elif setup == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        path.parent.chmod(0o500)
    elif setup == "folder-is-a-file":
        path.parent.rmdir()
        path.parent.write_text("")
    try:
        for command in ("draft", "batch"):
            out = tmp_path / f"out-{command}"
            code, _, stderr = run_cli(command, str(CHORDOMA), "-o", str(out), "--redact-ledger")
            assert code == 3, stderr
            assert len(stderr.strip().splitlines()) == 1 and fragment in stderr, stderr
            assert not list(out.glob("*.ledger.json")) if out.exists() else True
    finally:
        path.parent.chmod(0o700)


def test_a_ledger_redacted_with_another_key_is_not_up_to_date(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = ("batch", str(CHORDOMA), "-o", str(out), "--redact-ledger")
    assert "1 ok" in run_cli(*args)[1]
    assert "1 skipped" in run_cli(*args)[1]
    monkeypatch.setenv(KEY_ENV, "another-key-0123456789abcdef")
    assert "1 ok" in run_cli(*args)[1]  # drafted again: its tokens are the new key's
    assert token(api.load_case(CHORDOMA).case.patient.name) in (out / LEDGER).read_text()


def test_a_ledger_of_earlier_versions_still_validates(config: Path, tmp_path: Path) -> None:
    # [sha256:<hex>/<words>] tokens (unkeyed) are still read as tokens by `lettergen validate`.
    out = tmp_path / "out"
    _draft(out)
    ledger = out / LEDGER
    ledger.write_text(re.sub(r"\[hmac-sha256:", "[sha256:", ledger.read_text()))
    code, stdout, _ = run_cli("validate", str(out / "chordoma-gluteal-001.lmn.md"), "--ledger", str(ledger))
    assert code == 0, stdout
    assert json.loads(ledger.read_text())["redacted"] is True
