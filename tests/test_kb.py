"""The knowledge base: integrity, the ICD-10 index, and traceability from criterion to source."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from lettergen.case import codes
from lettergen.knowledge.store import load_kb


def test_store_has_no_integrity_errors() -> None:
    from lettergen import api

    issues = api.check_knowledge(load_kb(), date(2026, 11, 21))
    assert [i for i in issues if i.level == "error"] == []


def test_every_criterion_traces_to_a_located_finding_with_an_identifier() -> None:
    kb = load_kb()
    for pol in kb.policies.values():
        for where, cid in pol.cited_ids():
            src, finding = kb.finding(cid)
            assert finding.locator, f"{pol.id} {where} -> {cid} has no locator"
            assert src.doi or src.pmid or src.url


def test_knowledge_base_breadth() -> None:
    kb = load_kb()
    assert len(kb.sources) >= 15
    required = {
        "20206",
        "20225",
        "38505",
        "20982",
        "20983",
        "77520",
        "77522",
        "77523",
        "77525",
        "78815",
        "77002",
        "77012",
        "77013",
    }
    assert required <= set(kb.codes())
    assert len([s for s in kb.policy_sets() if s != "default"]) >= 2
    for pol in kb.policies.values():
        assert pol.checklist and pol.version and pol.effective


@pytest.mark.parametrize("primary", ["20982", "20983"])
def test_ablation_bundles_guidance(primary: str) -> None:
    pol = load_kb().policy_for(primary)
    assert pol is not None
    assert {"77002", "77012", "77013"} <= {b.code for b in pol.bundles}


def test_rfa_card_says_the_policy_wins_over_the_seed() -> None:
    pol = load_kb().policy_for("20982")
    assert pol is not None and pol.card is not None
    notes = " ".join(n.text for n in pol.card.notes).lower()
    assert "osteoid osteoma" in notes


def test_icd10_index_matches_the_code_set() -> None:
    icd = pytest.importorskip("simple_icd_10_cm")
    shipped = set(codes.ICD10_INDEX.read_text(encoding="ascii").split())
    expected = {c for c in icd.get_all_codes(True) if icd.is_leaf(c) and not icd.is_chapter_or_block(c)}
    assert shipped == expected


@pytest.mark.parametrize(
    ("raw", "normalised", "ok"),
    [
        ("c414", "C41.4", True),
        (" C41.4 ", "C41.4", True),
        ("C79.89", "C79.89", True),
        ("C41", "C41", False),
        ("Z99.999", "Z99.999", False),
        ("S72.001A", "S72.001A", True),
    ],
)
def test_icd10_normalise_and_check(raw: str, normalised: str, ok: bool) -> None:
    code = codes.normalize_icd10(raw)
    assert code == normalised
    assert (codes.icd10_problem(code) is None) is ok


@pytest.mark.parametrize(
    ("npi", "ok"), [("1234567893", True), ("1234567890", False), ("123456789", False), ("12345678a3", False)]
)
def test_npi_check_digit(npi: str, ok: bool) -> None:
    assert (codes.npi_problem(npi) is None) is ok


@pytest.mark.parametrize(
    ("code", "ok"), [("20206", True), ("0600T", True), ("G0288", True), ("2020", False), ("Z1234", False)]
)
def test_service_code_format(code: str, ok: bool) -> None:
    assert (codes.service_code_problem(code) is None) is ok


EXAMPLE_CASES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLE_CASES, ids=lambda p: p.stem)
def test_claims_built_once_per_knowledge_base_equal_fresh_ones(example: Path) -> None:
    # Claims from the knowledge base alone are memoised on it: a warm one builds the same material as a
    # knowledge base that has built nothing yet, and every letter gets its own lists.
    from lettergen import api
    from lettergen.letter.claims import build_material

    warm = load_kb()
    loaded = api.load_case(example, kb=warm)
    decision = api.check(loaded.case, warm)
    day = date(2026, 11, 21)
    first = build_material(loaded.case, decision, warm, day)
    second = build_material(loaded.case, decision, warm, day)
    fresh = replace(warm)
    assert fresh.memo == {}
    assert build_material(loaded.case, decision, fresh, day) == first == second
    for a, b in zip(first.services, second.services, strict=True):
        assert a.memo_changes is not b.memo_changes and a.memo_pitfalls is not b.memo_pitfalls


def test_memo_is_not_pickled() -> None:
    kb = load_kb()
    from lettergen.letter.claims import finding_claim

    finding_claim(kb, next(iter(kb.citations)), "t")
    assert kb.memo
    assert pickle.loads(pickle.dumps(kb)).memo == {}
