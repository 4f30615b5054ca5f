"""Appeal letters: denial-aware rebuttals, the deadline sentence, voices, and no appeal for an unmet code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, run_cli

from lettergen import api
from lettergen.case.denials import classify, lookup
from lettergen.case.model import case_from_mapping
from lettergen.errors import CaseError
from lettergen.letter.appeals import NothingToAppeal
from lettergen.letter.layout import long_date
from lettergen.validation.rules import validate_letter

ERISA = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"
MEDICARE = EXAMPLES / "appeal-medicare-redetermination-sacral-biopsy.yaml"
EXTERNAL = EXAMPLES / "external-review-urgent-proton-skull-base.yaml"
NOT_MET = EXAMPLES / "appeal-not-met-cryoablation.yaml"


def _draft(path: Path, **kw: Any) -> api.Draft:
    return api.draft(api.load_case(path), fmt=kw.pop("fmt", "txt"), **kw)


@pytest.mark.parametrize(
    ("path", "ltype", "must"),
    [
        (ERISA, "appeal", ["May 9, 2027", "counted from November 10, 2026", "CO-50", "peer-to-peer", "CPT 20206"]),
        (MEDICARE, "appeal", ["March 11, 2027", "Medicare redetermination", "N115", "Local Coverage"]),
        (EXTERNAL, "external_review", ["March 18, 2027", "72 hours", "expedited review", "standard of care"]),
        (EXTERNAL, "peer_to_peer", ["Stated reason", "Criteria met, with the evidence", "Reverse the denial"]),
    ],
    ids=["erisa", "medicare", "external-urgent", "p2p"],
)
def test_appeal_letters_validate_and_state_the_deadline(path: Path, ltype: str, must: list[str]) -> None:
    d = _draft(path, letter_type=ltype)
    assert d.validation.ok, d.validation.issues
    text = d.text.lower()
    for part in must:
        assert part.lower() in text, part
    ids = {s.id for s in d.letter.sentences}
    assert {"denial.date", "deadline.due", "request.ask"} <= ids
    deadline = d.letter.sentence("deadline.due")
    assert deadline.kind == "claim" and all(c.startswith("cfr-") for c in deadline.citations)
    assert d.decision.deadline is not None and d.decision.deadline.due is not None
    assert long_date(d.decision.deadline.due) in deadline.text


def test_deadline_advice_goes_to_the_staff_note_not_the_payer() -> None:
    d = _draft(MEDICARE)
    assert "5-day receipt presumption is applied" in d.notes and "safer target" in d.notes
    assert "safer target" not in d.text and "presumption" not in d.text
    # Original Medicare: the Medicare number and the dates of service, no plan documents, no peer-to-peer.
    assert "peer-to-peer" not in d.text and "plan documents" not in d.text


def test_every_appeal_asks_for_criteria_and_peer_review_and_expedites_when_urgent() -> None:
    normal, urgent = _draft(ERISA), _draft(EXTERNAL)
    for d in (normal, urgent):
        assert {"request.criteria", "request.p2p"} <= {s.id for s in d.letter.sentences}
    assert "request.expedited" not in {s.id for s in normal.letter.sentences}
    assert "request.expedited" in {s.id for s in urgent.letter.sentences}


@pytest.mark.parametrize(
    ("category", "section", "marker"),
    [
        ("not_medically_necessary", "How the criteria are met", "rationale."),
        ("experimental_investigational", "standard of care", "soc."),
        ("missing_documentation", "documentation the criteria require", "checklist."),
        ("coding", "coding is correct", "card."),
    ],
)
def test_rebuttal_follows_the_denial_category(category: str, section: str, marker: str) -> None:
    data = yaml.safe_load(ERISA.read_text())
    data["denial"]["category"] = category
    d = api.draft(case_from_mapping(data, "case.yaml"), letter_type="appeal", fmt="md")
    assert d.validation.ok, d.validation.issues
    assert section.lower() in d.text.lower()
    assert any(s.id.startswith(marker) for s in d.letter.sentences)


def test_overlay_that_finds_the_code_not_met_gets_no_appeal() -> None:
    src = yaml.safe_load((EXAMPLES / "ablation-cryo-osteoid-osteoma.yaml").read_text())
    data = {**src, "case_id": "overlay-appeal", "payer": {**src["payer"], "policy": "bcbs-mp-429"}}
    data["denial"] = {"date": "2026-11-02", "reference": "R-1", "reason": "Not medically necessary"}
    with pytest.raises(NothingToAppeal):
        api.draft(case_from_mapping(data, "case.yaml"), letter_type="appeal")


def test_overlay_appeal_quotes_the_plan_policy() -> None:
    data = yaml.safe_load((EXAMPLES / "proton-skull-base-chordoma.yaml").read_text())
    data["payer"]["policy"] = "aetna-cpb-0270"
    data["denial"] = {"date": "2026-11-02", "reference": "R-1", "reason": "Not medically necessary"}
    case = case_from_mapping(data, "case.yaml")
    d = api.draft(case, letter_type="appeal", fmt="md")
    assert "These are the plan's own criteria" in d.text
    assert any(c.startswith("aetna-cpb0270") for s in d.letter.sentences for c in s.citations)


def test_patient_voice_keeps_the_same_claims_and_citations() -> None:
    doc, pat = _draft(ERISA), _draft(ERISA, voice="patient")
    claims = lambda d: {(s.id, s.text, tuple(s.citations)) for s in d.letter.sentences if s.kind == "claim"}  # noqa: E731
    assert claims(doc) == claims(pat)
    assert pat.validation.ok
    intro = pat.letter.sentence("summary.intro").text
    assert intro.startswith("I am writing to appeal") and "my doctor" in intro
    assert "my patient" not in pat.text
    assert "my patient" in doc.letter.sentence("summary.intro").text


def test_unmet_code_gets_no_appeal_and_a_reason(tmp_path: Path) -> None:
    code, _, err = run_cli("draft", str(NOT_MET), "-o", str(tmp_path))
    assert code == 4  # nothing to draft: not bad input
    assert "no appeal drafted" in err and "20983: not_met" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_mixed_verdicts_appeal_only_the_met_code() -> None:
    d = _draft(ERISA)
    ask = d.letter.sentence("request.ask").text
    assert "20206" in ask and "38505" not in ask
    # The code not appealed is named in one neutral line; what its record lacks goes to the staff note only.
    scope = d.letter.sentence("scope.others").text
    assert scope == "This letter does not address CPT 38505."
    assert "node_enlarged_or_suspicious" in d.notes and "lymph node" not in d.text.split("Diagnoses")[0]


def test_validator_rule_4_requires_denial_and_deadline() -> None:
    d = _draft(ERISA)
    stripped = d.letter.model_copy(
        update={"sentences": [s for s in d.letter.sentences if s.id not in ("denial.date", "deadline.due")]}
    )
    result = validate_letter(stripped, d.case, d.decision, api.load_kb())
    messages = [i.message for i in result.issues if i.rule == 4]
    assert any("denial.date" in m for m in messages) and any("deadline.due" in m for m in messages)


def test_edited_deadline_date_fails_validation(tmp_path: Path) -> None:
    letter, ledger = _draft(ERISA, fmt="md").write(tmp_path)
    letter.write_text(letter.read_text().replace("May 9, 2027 [", "June 9, 2027 ["))
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 1 and "deadline.due" in out


@pytest.mark.parametrize(
    ("denial", "field"),
    [
        ({"codes": ["CO-999"]}, "denial.codes"),
        ({"codes": ["XX-50"]}, "denial.codes"),
        ({"codes": ["N29"]}, "denial.codes"),  # deactivated RARC: not in the list
        ({"date": "2999-01-01"}, "denial.date"),
        ({"category": "vibes"}, "denial.category"),
        ({"received": "2026-11-01"}, "denial"),
    ],
)
def test_bad_denial_values_name_the_field(denial: dict[str, Any], field: str) -> None:
    data = yaml.safe_load(ERISA.read_text())
    data["denial"] = {**data["denial"], **denial}
    with pytest.raises(CaseError) as err:
        case_from_mapping(data, "case.yaml")
    assert err.value.field == field
    assert "Jane" not in str(err.value)


@pytest.mark.parametrize(
    ("reason", "codes", "explicit", "expected"),
    [
        ("Not medically necessary", ("CO-50",), None, "not_medically_necessary"),
        ("Whatever", ("CO-55",), None, "experimental_investigational"),
        ("Whatever", ("N115", "CO-56"), None, "experimental_investigational"),
        ("Whatever", ("CO-97",), None, "coding"),
        ("Whatever", ("CO-252",), None, "missing_documentation"),
        ("The service is investigational", (), None, "experimental_investigational"),
        ("Records were not received", (), None, "missing_documentation"),
        ("Incorrect modifier billed", (), None, "coding"),
        ("Denied", ("CO-96", "N130"), None, "not_medically_necessary"),
        ("Denied", ("CO-50",), "coding", "coding"),
    ],
)
def test_classification(reason: str, codes: tuple[str, ...], explicit: str | None, expected: str) -> None:
    assert classify(reason, codes, explicit)[0] == expected


@pytest.mark.parametrize(
    ("code", "canonical"), [("co-50", "CO-50"), ("50", "50"), ("PR-204", "PR-204"), ("ma130", "MA130")]
)
def test_code_lookup_normalises(code: str, canonical: str) -> None:
    info = lookup(code)
    assert info is not None and info.code == canonical and info.meaning


def test_appeal_needs_a_denial() -> None:
    code, _, err = run_cli("draft", "examples/chordoma-gluteal-mass.yaml", "--type", "appeal", "-o", "/tmp/nowhere")
    assert code == 2 and "no denial block" in err


def test_no_patient_identifier_in_unappealable_message() -> None:
    with pytest.raises(NothingToAppeal) as err:
        _draft(NOT_MET)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", str(err.value))


def test_medicare_request_items_are_named_for_the_office_when_missing() -> None:
    # 42 CFR 405.944(b): the Medicare number and the dates of service; the example carries both.
    full = api.load_case(MEDICARE).case
    assert "Medicare request items missing" not in _draft(MEDICARE).notes
    bare = full.model_copy(
        update={
            "patient": full.patient.model_copy(update={"medicare_number": None, "member_id": "X1"}),
            "services": tuple(s.model_copy(update={"date_of_service": None}) for s in full.services),
        }
    )
    notes = api.draft(bare, fmt="md").notes
    assert "patient.medicare_number" in notes and "services[1].date_of_service" in notes
    assert "Medicare number:" in _draft(MEDICARE, fmt="md").text


def test_a_medicare_appeal_names_the_medicare_number_where_the_member_id_would_be(tmp_path: Path) -> None:
    # The header prints the Medicare number in place of the member id; rule 4 asked for the member id anyway,
    # so a Medicare case that carries both (the same number) could not be drafted.
    case = EXAMPLES / "vignettes" / "cases" / "appeal-medicare-redetermination-pet-restaging.yaml"
    code, _, err = run_cli("draft", str(case), "--type", "appeal", "-o", str(tmp_path), "--date", "2026-11-21")
    assert code == 0, err
    letter = next(tmp_path.glob("*.appeal.md")).read_text()
    assert "**Medicare number:**" in letter and "**Member ID:**" not in letter
