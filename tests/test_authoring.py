"""The policy analyst's tools: `kb lint` (every problem at once, with file and line), `schema export` and
`criteria test` (per-policy fixtures beside the criteria)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from conftest import CHORDOMA, ROOT, run_cli

from lettergen.errors import DataError
from lettergen.evals import criteria_fixtures, kb_lint
from lettergen.knowledge.store import _load_kb, load_kb
from lettergen.yamlio import compose, line_of

TODAY = date(2026, 12, 5)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the data folder (LETTERGEN_DATA), for a test to break. Its examples folder is empty: drafting
    every letter of an example is the one test that needs it (``with_example``), and costs the others time."""
    root = tmp_path / "data"
    for d in ("citations", "criteria", "templates", "prompts"):
        shutil.copytree(ROOT / d, root / d)
    (root / "examples").mkdir()
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    _load_kb.cache_clear()
    yield root
    _load_kb.cache_clear()


def with_example(root: Path) -> Path:
    shutil.copy(CHORDOMA, root / "examples")
    return root


def _replace(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in the file; the line it was on."""
    text = path.read_text()
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :])
    return text.count("\n", 0, at) + 1


# -- line numbers of a field path ------------------------------------------------------------------------------

DOC = """id: demo
codes:
  - {code: "20206", label: x}
indications:
  - id: first
    rule: {fact: a}
  - id: second.part
    rule:
      any: [{fact: b}, {fact: c}]
    basis: [src.one]
"""
LINES = [
    (("codes", 0, "label"), 3),
    ("codes.20206", 3),
    (("indications", 1, "rule", "any", 1), 9),
    ("indications.first.rule", 6),
    ("indications.second.part.basis", 10),  # an id holding a dot
    ("indications.second.part.because", 7),  # a key the file lacks: the deepest part it has
    ("nothing.here", 1),
]


@pytest.mark.parametrize(("where", "line"), LINES)
def test_line_of_maps_a_path_to_its_yaml_line(where: str | tuple[object, ...], line: int) -> None:
    assert line_of(compose(DOC), where) == line


# -- kb lint ---------------------------------------------------------------------------------------------------

# (file, old text, new text, level, path reported, message fragment); the line is where the change is.
BREAKS = [
    (
        "criteria/needle-biopsy-soft-tissue.yaml",
        "set: default",
        "bogus: 1\nset: default",
        "error",
        "bogus",
        "unknown key",
    ),
    (
        "criteria/needle-biopsy-soft-tissue.yaml",
        "type: bool",
        "type: boolean",
        "error",
        "questions[0].type",
        "Input should be",
    ),
    (
        "criteria/pet-ct-oncology.yaml",
        "cms-ncd-220-6-17-fdg-pet.framework",
        "cms-ncd-220-6-17-fdg-pet.framewrk",
        "error",
        "card.covers",
        "did you mean 'cms-ncd-220-6-17-fdg-pet.framework'?",
    ),
    (
        "criteria/bone-ablation-rfa.yaml",
        "{fact: mdt_recommends_ablation}",
        "{fakt: mdt_recommends_ablation}",
        "error",
        "considerations[1].rule",
        "matches none of its forms: unknown key 'fakt'",
    ),
    (
        "criteria/lymph-node-needle-biopsy.yaml",
        "questions:\n",
        "questions:\n  - {id: never_read, prompt: Never read?, type: bool}\n",
        "error",
        "questions.never_read",
        "is read by no rule",
    ),
    (
        "criteria/proton-beam-therapy.yaml",
        "review_by: 2027-12-01",
        "review_by: 2026-06-01",
        "warning",
        "review_by",
        "was due for review on 2026-06-01",
    ),
    ("citations/young2015-chordoma-metastasis.yaml", "accessed:", "accessd:", "error", "accessd", "unknown key"),
    ("criteria/pet-ct-oncology.yaml", "title:", "title: [unclosed\n", "error", "", "is not valid YAML"),
]


def _problem(report: kb_lint.LintReport, file: str, where: str, fragment: str) -> kb_lint.Problem:
    hits = [p for p in report.problems if p.file == file and p.where == where and fragment in p.message]
    assert hits, "\n".join(p.text() for p in report.problems)
    return hits[0]


@pytest.mark.parametrize(
    ("file", "old", "new", "level", "where", "fragment"), BREAKS, ids=[b[4] or b[5] for b in BREAKS]
)
def test_lint_reports_each_problem_with_file_and_line(
    data: Path, file: str, old: str, new: str, level: str, where: str, fragment: str
) -> None:
    line = _replace(data / file, old, new)
    report = kb_lint.run(today=TODAY)
    p = _problem(report, file, where, fragment)
    assert p.level == level
    if where == "bogus":
        assert p.line == line
    elif "[unclosed" not in new:
        assert p.line == line or (p.line is not None and abs(p.line - line) <= 1), p.text()
    assert bool(report.errors) == (level == "error")


def test_lint_reports_every_problem_at_once(data: Path) -> None:
    for file, old, new, *_ in BREAKS[:-1]:  # all but the YAML syntax error, in several files
        _replace(data / file, old, new)
    report = kb_lint.run(today=TODAY)
    for file, _, _, level, where, fragment in BREAKS[:-1]:
        assert _problem(report, file, where, fragment).level == level
    assert any("letters were not drafted" in p.message for p in report.problems)
    code, out, _ = run_cli("kb", "lint", "--today", TODAY.isoformat())
    assert code == 1 and "FAILED" in out


def test_a_mistyped_citation_still_fails_the_load_naming_the_file(data: Path) -> None:
    _replace(data / "criteria/pet-ct-oncology.yaml", "cms-ncd-220-6-17-fdg-pet.framework", "cms-ncd-220-6-17-fdg-pet.x")
    with pytest.raises(DataError, match=r"pet-ct-oncology\.yaml: card\.covers: cites unknown"):
        load_kb()


def test_lint_drafts_every_template_and_reports_one_that_fails(data: Path) -> None:
    with_example(data)
    _replace(data / "templates/determination.j2", "{", "We guarantee payment.\n{")
    report = kb_lint.run(today=TODAY)
    failed = [p for p in report.problems if p.check == "render"]
    assert {p.where for p in failed} == {"determination md", "determination txt", "determination html"}
    assert all("is printed outside a recorded sentence" in p.message for p in failed)


def test_lint_notes_that_sources_have_no_recheck_date_and_flags_unread_fields(data: Path) -> None:
    report = kb_lint.run(today=TODAY)
    assert not report.errors, report.text()
    assert any(p.level == "note" and "no re-check date" in p.message for p in report.problems)
    assert any(p.check == "field" and "Finding.quote" in p.message for p in report.problems)


def test_lint_of_the_shipped_knowledge_base_is_clean() -> None:
    code, out, err = run_cli("kb", "lint", "--today", TODAY.isoformat(), "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] and report["errors"] == 0 and report["drafted"] >= 60 and report["examples"] >= 10


# -- schema export ---------------------------------------------------------------------------------------------


def test_schema_export_writes_schemas_the_shipped_files_satisfy(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    code, _, err = run_cli("schema", "export", str(tmp_path))
    assert code == 0, err
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "case.schema.json",
        "criteria.schema.json",
        "citation.schema.json",
        "vocabulary.schema.json",
        "criteria-test.schema.json",
    }
    checks = [
        ("case.schema.json", sorted((ROOT / "examples").glob("*.yaml"))),
        ("criteria.schema.json", sorted(p for p in (ROOT / "criteria").glob("*.yaml") if not p.name.startswith("_"))),
        ("citation.schema.json", sorted((ROOT / "citations").glob("*.yaml"))),
        ("vocabulary.schema.json", [ROOT / "criteria" / "_vocabulary.yaml"]),
        ("criteria-test.schema.json", sorted((ROOT / "criteria" / "tests").glob("*.yaml"))),
    ]
    for name, files in checks:
        schema = json.loads((tmp_path / name).read_text())
        assert schema["$schema"].startswith("https://json-schema.org/")
        validator = jsonschema.Draft202012Validator(schema, format_checker=None)
        assert files
        for f in files:
            doc = json.loads(json.dumps(yaml.safe_load(f.read_text()), default=str))
            errors = [e.message for e in validator.iter_errors(doc)]
            assert errors == [], f"{f.name}: {errors[:2]}"
    bad = json.loads((tmp_path / "criteria.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(bad).iter_errors({"id": "x", "bogus": 1}))


# -- criteria test ---------------------------------------------------------------------------------------------


def test_the_shipped_fixtures_pass_and_cover_at_least_four_policies() -> None:
    code, out, err = run_cli("criteria", "test", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["passed"] == report["total"] > 0
    policies = {r["policy"] for r in report["results"]}
    assert len(policies) >= 4
    verdicts = {v for r in report["results"] for v in r["expected"].values()}
    assert verdicts == {"met", "not_met", "insufficient"}


def test_criteria_test_code_selects_fixtures() -> None:
    code, out, _ = run_cli("criteria", "test", "78815")
    assert code == 0
    assert "pet-ct-oncology" in out and "bone-ablation" not in out


FIXTURE_FAILURES = [
    (
        {"name": "wrong", "facts": {"mass_enlarging": True}, "expect": {"20206": "not_met"}},
        "20206 expected not_met, got met",
    ),
    (
        {"name": "gap", "facts": {}, "expect": {"20206": "met"}},
        "got insufficient (missing: mass_enlarging, imaging_suspicious)",
    ),
    (
        {"name": "typo", "facts": {"mass_enlargin": True}, "expect": {"20206": "met"}},
        "unknown fact id; did you mean 'mass_enlarging'?",
    ),
    ({"name": "type", "facts": {"mass_enlarging": 3}, "expect": {"20206": "met"}}, "must be true or false"),
    (
        {"name": "other", "facts": {"node_enlarged_or_suspicious": True}, "expect": {"38505": "met"}},
        "expects a verdict for no code of",
    ),
]


@pytest.mark.parametrize(("fixture", "message"), FIXTURE_FAILURES, ids=[f["name"] for f, _ in FIXTURE_FAILURES])
def test_a_failing_fixture_is_named_with_why(data: Path, fixture: dict[str, object], message: str) -> None:
    (data / "criteria/tests/needle-biopsy-soft-tissue.yaml").write_text(yaml.safe_dump([fixture]))
    code, out, _ = run_cli("criteria", "test", "20206" if "20206" in fixture["expect"] else "38505")  # type: ignore[operator]
    assert code == 1, out
    assert f"FAIL  needle-biopsy-soft-tissue: {fixture['name']}: " in out and message in out


BAD_FILES = [
    (
        "needle-biopsy-soft-tissue.yaml",
        "- name: x\n  expect: {'20206': maybe}\n",
        "needle-biopsy-soft-tissue.yaml:2: [0].expect.20206",
    ),
    (
        "needle-biopsy-soft-tissue.yaml",
        "- name: x\n  facts: {}\n",
        "needle-biopsy-soft-tissue.yaml:1: [0].expect: is required",
    ),
    ("no-such-policy.yaml", "- {name: x, expect: {'20206': met}}\n", "is named after no policy on file"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), BAD_FILES)
def test_a_malformed_fixture_file_is_bad_input(data: Path, name: str, text: str, fragment: str) -> None:
    (data / "criteria/tests" / name).write_text(text)
    code, _, err = run_cli("criteria", "test")
    assert code == 2 and fragment in err, err


def test_fixtures_run_against_a_given_knowledge_base() -> None:
    results = criteria_fixtures.run(kb=load_kb())
    assert results and all(r.ok for r in results)
