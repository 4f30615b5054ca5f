"""Startup discipline, no network offline, corrupt data files, patient data kept out of errors and ledgers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, ROOT, run_cli

from lettergen import api
from lettergen.case.model import Case
from lettergen.provenance.redact import SALT_ENV, token

HEAVY = ("litellm", "weasyprint", "fastapi", "uvicorn", "fhir", "docx", "rich", "simple_icd_10_cm", "pypdf")

NO_SOCKETS = """
import socket
class _NoSocket(socket.socket):
    def __init__(self, *a, **k):
        raise OSError("network disabled by the test")
socket.socket = _NoSocket
socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network disabled by the test"))
"""


def _py(code: str, tmp_path: Path, *, offline: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if offline:
        site = tmp_path / "nosock"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(NO_SOCKETS)
        env["PYTHONPATH"] = f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )


def test_offline_draft_imports_nothing_heavy(tmp_path: Path) -> None:
    code = f"""
import sys
from lettergen.interfaces.cli import main
sys.argv = ["lettergen", "draft", {str(CHORDOMA)!r}, "-o", "out"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    proc = _py(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "lettergen" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_check_draft_validate_batch_with_sockets_disabled(tmp_path: Path) -> None:
    proof = _py(
        "import socket\ntry:\n    socket.socket()\nexcept OSError:\n    print('blocked')", tmp_path, offline=True
    )
    assert proof.stdout.strip() == "blocked"
    ledger = "out/chordoma-gluteal-001.lmn.ledger.json"
    steps = [
        ["check", str(CHORDOMA)],
        ["draft", str(CHORDOMA), "-o", "out"],
        ["validate", "out/chordoma-gluteal-001.lmn.md", "--ledger", ledger],
        ["batch", str(CHORDOMA), str(ROOT / "examples" / "biopsy-sacral-lesion.yaml"), "-o", "bout", "--jobs", "2"],
    ]
    for args in steps:
        proc = _py(
            f"import sys\nfrom lettergen.interfaces.cli import main\nsys.argv = ['lettergen', *{args!r}]\nmain()",
            tmp_path,
            offline=True,
        )
        assert proc.returncode == 0, (args, proc.stderr)


def _kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for d in ("citations", "criteria", "templates", "prompts"):
        if (ROOT / d).is_dir():
            shutil.copytree(ROOT / d, root / d)
    return root


@pytest.mark.parametrize(
    ("folder", "mutate", "fragment"),
    [
        ("criteria", lambda d: d.update(version=None), "version"),
        ("criteria", lambda d: d.pop("checklist"), "checklist"),
        ("criteria", lambda d: d.update(colour="blue"), "colour"),
        ("citations", lambda d: d.update(findings="none"), "findings"),
        ("citations", lambda d: d.pop("title"), "title"),
    ],
)
def test_corrupt_data_file_names_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, mutate: Any, fragment: str
) -> None:
    root = _kb_copy(tmp_path)
    target = sorted((root / folder).glob("[a-z]*.yaml"))[0]
    data = yaml.safe_load(target.read_text())
    mutate(data)
    target.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    for args in (["check", str(CHORDOMA)], ["batch", str(CHORDOMA), "-o", str(tmp_path / "out")]):
        code, _, stderr = run_cli(*args)
        assert code == 2, stderr
        line = stderr.strip()
        assert "\n" not in line and target.name in line and fragment in line, line
    assert not (tmp_path / "out").exists()


def test_unparseable_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _kb_copy(tmp_path)
    target = sorted((root / "criteria").glob("*.yaml"))[0]
    target.write_bytes(b"id: [broken\n")
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    code, _, stderr = run_cli("check", str(CHORDOMA))
    assert code == 2 and target.name in stderr and "not valid YAML" in stderr


def test_internal_error_shows_no_case_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import lettergen.decision.engine as criteria

    case = api.load_case(CHORDOMA).case

    def bug(c: Case, kb: Any, letter_date: Any = None) -> Any:
        raise RuntimeError(" ".join(c.identifiers()))  # a bug whose message carries patient data

    monkeypatch.setattr(criteria, "decide", bug)
    monkeypatch.setattr(api, "decide", bug)
    monkeypatch.delenv("LETTERGEN_DEBUG", raising=False)
    code, stdout, stderr = run_cli("check", str(CHORDOMA))
    assert code == 1 and "internal error (RuntimeError)" in stderr and "Traceback" not in stderr
    for ident in case.identifiers():
        assert ident not in stderr + stdout


def test_internal_error_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    code = f"""
import sys
import lettergen.decision.engine as c, lettergen.api as a
def bug(case, kb):
    raise RuntimeError(case.patient.name)
c.decide = a.decide = bug
from lettergen.interfaces.cli import main
sys.argv = ["lettergen", "check", {str(CHORDOMA)!r}]
main()
"""
    proc = _py(code, tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Jane" not in proc.stderr and "internal error" in proc.stderr


@pytest.mark.parametrize("salt", [None, "site-secret"])
def test_redact_ledger_hides_every_identifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, salt: str | None
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the installation's key: made here
    if salt:
        monkeypatch.setenv(SALT_ENV, salt)  # the variable of earlier versions, read as the key
    else:
        monkeypatch.delenv(SALT_ENV, raising=False)
    case = api.load_case(CHORDOMA).case
    out = tmp_path / "out"
    code, _, stderr = run_cli("draft", str(CHORDOMA), "-o", str(out), "--redact-ledger")
    assert code == 0, stderr
    ledger_text = (out / "chordoma-gluteal-001.lmn.ledger.json").read_text()
    ledger = json.loads(ledger_text)
    assert ledger["redacted"] is True
    for ident in case.identifiers():
        assert ident not in ledger_text, ident
    name_token = token(case.patient.name)
    assert name_token in ledger["header"] or any(name_token in s["text"] for s in ledger["sentences"])
    assert name_token in json.dumps([s["text"] for s in ledger["sentences"]])
    assert token(case.patient.birth_date.isoformat()) in ledger["header"]
    # the letter itself still names the patient, and re-validates against the redacted ledger
    letter = (out / "chordoma-gluteal-001.lmn.md").read_text()
    assert case.patient.name in letter
    code, stdout, _ = run_cli(
        "validate",
        str(out / "chordoma-gluteal-001.lmn.md"),
        "--ledger",
        str(out / "chordoma-gluteal-001.lmn.ledger.json"),
    )
    assert code == 0, stdout


def test_the_key_changes_the_hash() -> None:
    assert token("Jane Q. Sample", "k" * 16) != token("Jane Q. Sample", "s" * 16) != token("Jane Q. Sample", "t" * 16)


def test_batch_redact_ledger(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = run_cli("batch", str(CHORDOMA), "-o", str(out), "--redact-ledger")
    assert code == 0, stderr
    text = (out / "chordoma-gluteal-001.lmn.ledger.json").read_text()
    for ident in api.load_case(CHORDOMA).case.identifiers():
        assert ident not in text
    # a redacted ledger is up to date for a redacted rerun, not for a plain one
    assert "1 skipped" in run_cli("batch", str(CHORDOMA), "-o", str(out), "--redact-ledger")[1]
    assert "1 ok" in run_cli("batch", str(CHORDOMA), "-o", str(out))[1]


def test_edit_to_a_redacted_ledger_letter_is_still_caught(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("draft", str(CHORDOMA), "-o", str(out), "--redact-ledger")
    letter = out / "chordoma-gluteal-001.lmn.md"
    letter.write_text(letter.read_text().replace("October 28, 2026", "October 29, 2026"))
    code, stdout, _ = run_cli("validate", str(letter), "--ledger", str(out / "chordoma-gluteal-001.lmn.ledger.json"))
    assert code == 1 and "2026-10-29" in stdout


SPY_PLUGIN = """
import os

class _Handler:
    def on_enter(self, input, **kwargs):
        with open(os.environ["LG_SPY_OUT"], "a", encoding="utf-8") as fh:
            fh.write(repr(input)[:5000] + "\\n")

class _Plugin:
    def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind, config, plugin_settings):
        return _Handler(), None, None

plugin = _Plugin()
"""


def spy_site(tmp_path: Path) -> Path:
    """A folder to put on PYTHONPATH holding a real pydantic plugin, installed through an entry point,
    that writes down every input it is shown (to the file named by LG_SPY_OUT)."""
    site = tmp_path / "site"
    dist = site / "lg_spy-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lg-spy\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nspy = lg_spy_plugin:plugin\n")
    (site / "lg_spy_plugin.py").write_text(SPY_PLUGIN)
    return site


@pytest.mark.parametrize(("setting", "sees_patient"), [(None, False), ("", True)])
def test_pydantic_plugins_never_see_case_data_from_the_cli(
    tmp_path: Path, setting: str | None, sees_patient: bool
) -> None:
    site = spy_site(tmp_path)
    out = tmp_path / "seen.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}", LG_SPY_OUT=str(out))
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting  # a user's own choice is kept (the control case)
    proc = subprocess.run(
        [sys.executable, "-m", "lettergen", "check", str(CHORDOMA)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    seen = out.read_text(encoding="utf-8") if out.exists() else ""
    assert ("Jane Q. Sample" in seen) is sees_patient
