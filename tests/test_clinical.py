"""Issue 18's acceptance points as behaviour: what the decision asks, what the payer reads, what the office reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, ROOT, run_cli

from lettergen import api
from lettergen.case.model import case_from_mapping
from lettergen.errors import DataError
from lettergen.knowledge.store import _load_kb

CASES = EXAMPLES / "vignettes" / "cases"


def _case(path: Path, facts: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Any:
    data = yaml.safe_load(path.read_text())
    data["facts"] = {k: v for k, v in {**data.get("facts", {}), **(facts or {})}.items() if k not in drop}
    return case_from_mapping(data, path.name)


MISSING = [
    # case, facts added, facts dropped, code, the questions still asked (most decisive first)
    # A known metastasis: the osteoid-osteoma question cannot change the verdict, so it is not asked.
    (
        CASES / "rfa-met-osteolytic-no-tumor-board.yaml",
        {},
        ("metastasis_osteolytic",),
        "20982",
        ["metastasis_osteolytic"],
    ),
    # Nothing known about the lesion: its type decides most; medical management decides whenever it is an
    # osteoid osteoma (one type in four), each metastasis question only when the other one holds too.
    (
        CASES / "rfa-met-osteolytic-no-tumor-board.yaml",
        {},
        ("bone_lesion_type", "metastasis_osteolytic", "failed_or_poor_candidate_standard_therapy"),
        "20982",
        [
            "bone_lesion_type",
            "refractory_to_medical_management",
            "metastasis_osteolytic",
            "failed_or_poor_candidate_standard_therapy",
        ],
    ),
    # A guideline point (tumor board, bleeding risk) is never a missing fact: it cannot change a verdict.
    (CHORDOMA, {}, ("uncorrected_coagulopathy",), "20206", []),
    (CHORDOMA, {}, (), "38505", ["node_enlarged_or_suspicious"]),
]


@pytest.mark.parametrize(("path", "add", "drop", "code", "asked"), MISSING)
def test_missing_facts_are_the_questions_that_can_change_the_verdict(
    path: Path, add: dict[str, Any], drop: tuple[str, ...], code: str, asked: list[str]
) -> None:
    service = api.check(_case(path, add, drop)).service(code)
    assert [m.id for m in service.missing_facts] == asked


def test_a_declared_question_no_rule_reads_fails_the_knowledge_base(tmp_path: Path, monkeypatch: Any) -> None:
    import shutil

    root = tmp_path / "kb"
    for d in ("citations", "criteria", "templates"):
        shutil.copytree(ROOT / d, root / d)
    target = root / "criteria" / "pet-ct-oncology.yaml"
    target.write_text(
        target.read_text().replace(
            "questions:\n", 'questions:\n  - {id: unused_flag, prompt: "Unused?", type: bool}\n', 1
        )
    )
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    _load_kb.cache_clear()
    try:
        with pytest.raises(DataError, match=r"questions\.unused_flag: is read by no rule"):
            api.load_kb()
    finally:
        _load_kb.cache_clear()


def test_a_letter_with_nothing_to_request_is_not_drafted(tmp_path: Path) -> None:
    code, _, err = run_cli("draft", str(EXAMPLES / "proton-sacral-chordoma.yaml"), "-o", str(tmp_path))
    assert code == 4 and len(err.strip().splitlines()) == 1 and "CPT 77525 not met" in err
    assert list(tmp_path.iterdir()) == []
    code, _, _ = run_cli(
        "draft", str(EXAMPLES / "proton-sacral-chordoma.yaml"), "--type", "determination", "-o", str(tmp_path)
    )
    assert code == 0  # the internal memo still drafts


INTERNAL = re.compile(
    r"\b(overlay|seed|lettergen|safer target|Saturdays|not yet documented|missing documentation)\b", re.I
)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("[a-z]*.yaml")), ids=lambda p: p.stem)
def test_payer_letters_carry_nothing_internal(path: Path) -> None:
    loaded = api.load_case(path)
    for ltype in ("lmn", "appeal", "external_review"):
        try:
            d = api.draft(loaded, letter_type=ltype)
        except Exception:  # no denial to answer, or nothing to draft
            continue
        assert not INTERNAL.search(d.text), (ltype, INTERNAL.search(d.text))
        requested = [v.code for v in d.decision.services if v.verdict == "met" or v.rationale]
        not_requested = [v.code for v in d.decision.services if v.code not in requested]
        for code in not_requested:  # named at most in one neutral line, never with what its record lacks
            assert d.text.count(code) <= 1, (ltype, code)


def test_the_chordoma_letter_cites_chordoma_evidence_first() -> None:
    d = api.draft(api.load_case(CHORDOMA))
    criterion = [s for s in d.letter.sentences if s.id.startswith("rationale.20206.suspicious-mass.") and s.citations]
    assert criterion[0].citations[0].startswith("young2015-chordoma-metastasis.")
    # an osteoid-osteoma finding never reaches a metastasis letter
    rfa = api.draft(api.load_case(CASES / "rfa-met-osteolytic-no-tumor-board.yaml"))
    assert not [c for s in rfa.letter.sentences for c in s.citations if "osteoid" in c]
