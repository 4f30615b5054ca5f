"""Bad input: one clear line naming the file and field, exit 2, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, run_cli

GOOD: dict[str, Any] = yaml.safe_load(CHORDOMA.read_text())


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of the chordoma case with one field set (value None with '!del' deletes it)."""
    data = yaml.safe_load(CHORDOMA.read_text())
    keys = path.split(".")
    node: Any = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value == "!del":
        del node[last]
    else:
        node[last] = value
    return data


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


RAW: list[tuple[str, str | bytes, str]] = [
    # id, file content, expected fragment (the field or the problem)
    ("not-yaml", "case_id: [unclosed\n", "not valid YAML"),
    ("list-top", "- a\n- b\n", "mapping at the top level"),
    ("scalar-top", "just text\n", "mapping at the top level"),
    ("empty", "", "is empty"),
    ("whitespace", "   \n\n", "is empty"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
    ("latin1", "case_id: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("dup-key", "case_id: a\ncase_id: b\n", "duplicate key"),
    ("list-as-key", "? [case_id, x]\n: a\n", "mapping key must be a plain value"),
    ("mapping-as-key", "? {a: 1}\n: a\n", "mapping key must be a plain value"),
    ("merge-key", "base: &b {case_id: a}\n<<: *b\n", "not valid YAML"),
    ("tag-int", "case_id: !!int seven\n", "does not fit its !! tag"),
    ("tag-float", "case_id: !!float x\n", "does not fit its !! tag"),
    ("unknown-tag", "case_id: !thing x\n", "not valid YAML"),
    ("map-tag-on-list", "case_id: !!map [1]\n", "expected a mapping node"),
    ("bad-json", '{"case_id": ', "not valid"),
]

MUTATIONS: list[tuple[str, str, Any, str]] = [
    ("missing-patient", "patient", "!del", "patient: is required"),
    ("missing-services", "services", "!del", "services: is required"),
    ("missing-diagnoses", "diagnoses", "!del", "diagnoses: is required"),
    ("empty-services", "services", [], "services"),
    ("unknown-top-key", "colour", "blue", "colour: unknown key"),
    ("unknown-patient-key", "patient.nickname", "J", "patient.nickname: unknown key"),
    ("bad-icd", "diagnoses.0.code", "C99.99", "diagnoses[0].code"),
    ("icd-category", "diagnoses.0.code", "C41", "not a billable code"),
    ("icd-shape", "diagnoses.0.code", "12345", "diagnoses[0].code"),
    ("bad-cpt", "services.0.code", "2020", "services[0].code"),
    ("bad-cpt-letters", "services.0.code", "ABCDE", "services[0].code"),
    # A code with no criteria on file is not an error (verdict not_assessed); its rationale entries are checked.
    ("rationale-no-source", "services.0.rationale", [{"statement": "x", "date": "2026-10-01"}], "rationale[0].source"),
    ("rationale-future", "services.0.rationale", [{"statement": "x", "source": "y", "date": "2999-01-01"}], "future"),
    (
        "rationale-bad-key",
        "services.0.rationale",
        [{"statement": "x", "source": "y", "date": "2026-10-01", "why": 1}],
        "why: unknown key",
    ),
    (
        "rationale-bidi",
        "services.0.rationale",
        [{"statement": "x\u202e", "source": "y", "date": "2026-10-01"}],
        "statement: contains bidirectional",
    ),
    ("label-two-lines", "services.0.label", "Total knee\nreplacement", "services[0].label: must be one line"),
    ("dup-service", "services.1.code", "20206", "requested twice"),
    ("bad-npi", "provider.npi", "1234567890", "provider.npi: fails the NPI check digit"),
    ("short-npi", "provider.npi", "12345", "provider.npi: must be 10 digits"),
    # An unknown fact id is not echoed (it may be a member id put there); a declared one close to it is.
    ("unknown-fact", "facts.mass_enlargin", {"value": True}, "unknown fact id; did you mean 'mass_enlarging'?"),
    ("fact-wrong-type", "facts.mass_enlarging.value", "yes please", "facts.mass_enlarging.value"),
    ("fact-unknown-key", "facts.mass_enlarging.confidence", 0.9, "confidence: unknown key"),
    ("unsafe-case-id", "case_id", "../../etc/passwd", "case_id"),
    ("case-id-slash", "case_id", "a/b", "case_id"),
    ("case-id-space", "case_id", "a b", "case_id"),
    ("bad-date", "patient.birth_date", "1965-13-45", "patient.birth_date"),
    ("future-birth", "patient.birth_date", "2999-01-01", "patient.birth_date: is in the future"),
    ("bad-fact-date", "facts.mass_enlarging.date", "yesterday", "facts.mass_enlarging.date"),
    ("bad-plan", "payer.plan_type", "cash", "payer.plan_type"),
    ("bad-state", "payer.state", "California", "payer.state"),
    ("unknown-policy", "payer.policy", "acme-123", "payer.policy: is not a payer policy set on file"),
    ("bad-letter-type", "letter.type", "poem", "letter.type"),
    ("control-chars", "patient.name", "Jane\x07Doe", "patient.name: contains control characters"),
    ("units-zero", "services.0.units", 0, "services[0].units"),
    ("patient-not-map", "patient", "Jane", "patient"),
]


def _assert_clean_failure(tmp_path: Path, case_file: Path, fragment: str) -> None:
    out_dir = tmp_path / "out"
    for args in (["check", str(case_file)], ["draft", str(case_file), "-o", str(out_dir)]):
        code, stdout, stderr = run_cli(*args)
        assert code == 2, (args, stdout, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert str(case_file) in lines[0] and fragment in lines[0], lines[0]
        assert "Traceback" not in stderr + stdout
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize(("name", "content", "fragment"), RAW, ids=[r[0] for r in RAW])
def test_raw_bad_files(tmp_path: Path, name: str, content: str | bytes, fragment: str) -> None:
    suffix = ".json" if name == "bad-json" else ".yaml"
    f = tmp_path / f"{name}{suffix}"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    _assert_clean_failure(tmp_path, f, fragment)


@pytest.mark.parametrize(("name", "path", "value", "fragment"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutated_cases(tmp_path: Path, name: str, path: str, value: Any, fragment: str) -> None:
    f = tmp_path / f"{name}.yaml"
    f.write_text(as_yaml(mutate(path, value)))
    _assert_clean_failure(tmp_path, f, fragment)


def test_missing_file(tmp_path: Path) -> None:
    code, _, stderr = run_cli("check", str(tmp_path / "nope.yaml"))
    assert code == 2 and "file not found" in stderr


def test_directory_given(tmp_path: Path) -> None:
    code, _, stderr = run_cli("check", str(tmp_path))
    assert code == 2 and "directory" in stderr


def test_bad_date_flag(tmp_path: Path) -> None:
    code, _, stderr = run_cli("draft", str(CHORDOMA), "--date", "21/11/2026", "-o", str(tmp_path))
    assert code == 2 and "--date" in stderr and not any(tmp_path.iterdir())


def test_errors_never_echo_patient_values(tmp_path: Path) -> None:
    data = mutate("patient.birth_date", "1965-14-14")
    data["patient"]["name"] = "Zebediah Quux"
    f = tmp_path / "c.yaml"
    f.write_text(as_yaml(data))
    _, _, stderr = run_cli("check", str(f))
    assert "Zebediah" not in stderr and "1965-14-14" not in stderr


def test_impossible_unquoted_yaml_date(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(CHORDOMA.read_text().replace("birth_date: 1965-03-14", "birth_date: 1965-13-14"))
    _assert_clean_failure(tmp_path, f, "patient.birth_date")
