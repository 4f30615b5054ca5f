"""A requested code with no criteria on file (issue 23 point 1): verdict not_assessed, a letter that rests on the
clinician's documented rationale and names no policy, the staff note that says no criteria were checked, and
the validator's rules 5 and 7 for such a code."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api
from lettergen.case.model import Case
from lettergen.decision.engine import decide
from lettergen.errors import NothingToDraft
from lettergen.knowledge.store import load_kb
from lettergen.letter.render import Sentence
from lettergen.validation.rules import consistency_issues, necessity_issues

KNEE = EXAMPLES / "not-assessed-knee-arthroplasty.yaml"
DAY = date(2026, 11, 21)
RATIONALE = [
    {
        "statement": "Standing radiographs of the left knee show bone-on-bone contact in the medial compartment.",
        "source": "Left knee radiographs",
        "date": "2026-09-15",
    },
    {
        "statement": "Pain persisted after 12 weeks of supervised physical therapy and two steroid injections.",
        "source": "Orthopaedic surgery clinic note",
        "date": "2026-10-20",
    },
]


def _case(path: Path, edit: Any) -> Case:
    data = yaml.safe_load(path.read_text())
    edit(data)
    return Case.model_validate(data)


def _knee(rationale: bool = True) -> Case:
    def edit(d: dict[str, Any]) -> None:
        if not rationale:
            del d["services"][0]["rationale"]

    return _case(KNEE, edit)


def _mixed(rationale: bool = True) -> Case:
    """The chordoma case (20206 met, 38505 insufficient) with a knee arthroplasty requested beside it."""

    def edit(d: dict[str, Any]) -> None:
        svc: dict[str, Any] = {"code": "27447", "label": "Total knee arthroplasty", "site": "left knee"}
        if rationale:
            svc["rationale"] = RATIONALE
        d["services"].append(svc)

    return _case(CHORDOMA, edit)


def _policy_words() -> list[str]:
    kb = load_kb()
    return [p.title for p in kb.policies.values()]


# -- the decision -------------------------------------------------------------------------------------------


def test_a_code_with_no_criteria_is_not_assessed_with_its_rationale() -> None:
    sd = api.check(api.load_case(KNEE).case).service("27447")
    assert (sd.verdict, sd.policy, sd.label) == ("not_assessed", None, "Total knee arthroplasty")
    assert (sd.criteria, sd.missing_facts, sd.conflicts) == ((), (), ())
    assert [r.id for r in sd.rationale] == [f"27447.rationale.{n}" for n in range(1, 6)]
    assert sd.rationale[0].source.startswith("Left knee radiographs")


def test_check_json_and_text_say_not_assessed() -> None:
    code, out, err = run_cli("check", str(KNEE), "--json")
    assert code == 0, err
    s = json.loads(out)["services"][0]
    assert (s["verdict"], s["policy"], s["criteria"]) == ("not_assessed", None, [])
    assert set(s["rationale"][0]) == {"id", "statement", "source", "date"}
    code, out, _ = run_cli("check", str(KNEE))
    assert code == 0 and "27447  not_assessed" in out and "[no criteria on file]" in out
    assert "= rationale 27447.rationale.1 (Left knee radiographs" in out


def test_check_text_says_what_a_code_without_rationale_needs(tmp_path: Path) -> None:
    f = tmp_path / "knee.yaml"
    f.write_text(yaml.safe_dump(_knee(rationale=False).model_dump(mode="json")))
    code, out, _ = run_cli("check", str(f))
    assert code == 0 and "no rationale" in out and "services[].rationale" in out


def test_a_code_bundled_into_another_is_not_met_even_without_criteria_of_its_own() -> None:
    kb = load_kb()
    kb = dataclasses.replace(kb, by_code={k: v for k, v in kb.by_code.items() if k[1] != "77013"})
    case = api.load_case(EXAMPLES / "ablation-rfa-bone-metastasis.yaml").case
    sd = decide(case, kb, DAY).service("77013")
    assert (sd.verdict, sd.policy, sd.rationale) == ("not_met", None, ())
    assert [c.id for c in sd.criteria] == ["not-bundled-into-20982"]
    memo = api.draft(case, letter_type="determination", kb=kb, letter_date=DAY)
    assert memo.validation.ok and "No criteria of its own are on file for this code." in memo.text


# -- the letter ---------------------------------------------------------------------------------------------


def test_the_knee_letter_rests_on_the_rationale_and_names_no_policy() -> None:
    d = api.draft(api.load_case(KNEE), letter_date=DAY)
    assert d.validation.ok and not d.validation.issues
    text = d.text
    for word in ("Criteria applied", "criterion", "coverage criteria", "meets", "exclusion", "policy"):
        assert word not in text, word
    assert not [t for t in _policy_words() if t in text]
    assert "## Documented clinical grounds" in text and "### CPT 27447: Total knee arthroplasty" in text
    assert "I ask that you authorize CPT 27447 (total knee arthroplasty, left knee)" in text
    grounds = [s for s in d.letter.sentences if s.id.startswith("grounds.27447.")]
    assert [s.facts for s in grounds] == [[f"27447.rationale.{n}"] for n in range(1, 6)]
    assert all(s.kind == "claim" and not s.citations for s in grounds)
    assert "(Left knee radiographs, standing AP, lateral and sunrise views, September 15, 2026)." in text
    verdict = d.letter.sentence("verdict.27447")
    assert verdict.text.startswith("The case for CPT 27447 rests on the clinical findings documented")
    assert verdict.facts == [g.facts[0] for g in grounds]
    assert not d.letter.references  # no finding is cited: the letter rests on chart facts alone


def test_the_staff_note_says_no_criteria_were_checked() -> None:
    note = api.draft(api.load_case(KNEE), letter_date=DAY).notes
    assert "CPT 27447 (Total knee arthroplasty): not assessed (no criteria on file" in note
    assert "## No criteria checked" in note and "no criteria were checked for this code" in note
    assert "attach the payer's own policy for this code" in note and "clinical rationale" in note


def test_without_rationale_nothing_is_drafted_exit_4(tmp_path: Path) -> None:
    f = tmp_path / "knee.yaml"
    f.write_text(yaml.safe_dump(_knee(rationale=False).model_dump(mode="json")))
    code, _, err = run_cli("draft", str(f), "-o", str(tmp_path / "out"))
    assert code == 4, err
    assert "CPT 27447 not assessed" in err and "services[0].rationale" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(NothingToDraft):
        api.draft(_knee(rationale=False))
    # The internal memo still drafts, and its staff note says what to add.
    memo = api.draft(_knee(rationale=False), letter_type="determination", letter_date=DAY)
    assert memo.validation.ok
    assert "and no clinical rationale is documented" in memo.text
    assert "Add under services[0] a `label` in the clinician's words and `rationale` entries" in memo.notes


def test_a_mixed_case_argues_each_code_on_its_own_grounds() -> None:
    d = api.draft(_mixed(), letter_date=DAY)
    assert d.validation.ok and not d.validation.issues
    text = d.text
    verdicts = {s.code: s.verdict for s in d.decision.services}
    assert verdicts == {"20206": "met", "38505": "insufficient", "27447": "not_assessed"}
    assert "request prior authorization for CPT 20206 (" in text and " and CPT 27447 (total knee arthroplasty" in text
    assert "CPT 20206 meets each criterion set out below" in text
    assert "38505" not in text
    # 20206 under its criteria; 27447 under the documented grounds, after them, with no policy of its own
    criteria_at, grounds_at = text.index("## Medical necessity, criterion by criterion"), text.index("## Documented")
    assert criteria_at < grounds_at < text.index("## Request")
    assert "Criteria applied:" in text[criteria_at:grounds_at] and "Criteria applied" not in text[grounds_at:]
    assert not any(s.id.startswith("rationale.27447.") for s in d.letter.sentences)
    assert [s.id for s in d.letter.sentences if s.id.startswith("grounds.")] == ["grounds.27447.1", "grounds.27447.2"]
    assert "- CPT 27447 (Total knee arthroplasty): not assessed" in d.notes
    assert "## No criteria checked" in d.notes and "## Enclose with the letter" in d.notes


def test_a_mixed_case_without_rationale_requests_the_met_code_alone() -> None:
    d = api.draft(_mixed(rationale=False), letter_date=DAY)
    assert d.validation.ok and "27447" not in d.text
    assert "- CPT 27447 (Total knee arthroplasty): not assessed (no criteria on file); not in the letter" in d.notes
    assert "Add under services[2] a `label`" in d.notes


def test_rationale_on_a_code_with_criteria_is_clinical_history() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"][0]["rationale"] = RATIONALE[:1]
        d["services"][0]["label"] = "Biopsy"

    d = api.draft(_case(CHORDOMA, edit), letter_date=DAY)
    assert d.validation.ok and d.decision.service("20206").rationale == ()
    assert "history.20206.rationale.1" in [s.id for s in d.letter.sentences]
    assert "Needle biopsy of muscle or deep soft tissue" in d.text and "20206: Biopsy" not in d.text
    assert "its criteria decide it; services[0].label is not used" in d.notes


def test_an_appeal_of_a_code_with_no_criteria_rests_on_its_rationale() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["denial"] = {"date": "2026-11-10", "reference": "CLM-0000002", "reason": "Not medically necessary"}

    case = _case(KNEE, edit)
    for ltype in ("appeal", "external_review", "peer_to_peer"):
        d = api.draft(case, letter_type=ltype, letter_date=DAY)
        assert d.validation.ok, (ltype, d.validation.issues)
        assert "Documented clinical grounds" in d.text and "Criteria applied" not in d.text, ltype
        assert "criteria are met" not in d.text, ltype
    appeal = api.draft(case, letter_type="appeal", letter_date=DAY).text
    assert "I ask you to reverse the denial and approve coverage of CPT 27447" in appeal
    # With no rationale there is nothing to appeal on.
    bare = case.model_copy(update={"services": (case.services[0].model_copy(update={"rationale": ()}),)})
    with pytest.raises(NothingToDraft, match="services\\[\\]\\.rationale"):
        api.draft(bare, letter_type="appeal", letter_date=DAY)


def test_the_determination_memo_says_not_assessed() -> None:
    d = api.draft(api.load_case(KNEE), letter_type="determination", letter_date=DAY)
    assert d.validation.ok
    assert "not assessed against criteria (none are on file); a request for it rests on the clinician's" in d.text
    assert "No criteria are applied: the clinician's documented rationale follows." in d.text
    assert "CPT 27447 was not assessed against criteria" in d.text


# -- the validator ------------------------------------------------------------------------------------------


def _sentence(sid: str, text: str) -> Sentence:
    return Sentence(id=sid, text=text, kind="structural")


@pytest.mark.parametrize(
    ("sid", "text", "grounded", "flagged"),
    [
        ("request.ask", "I ask that you authorize CPT 27447 (total knee arthroplasty).", True, False),
        ("summary.intro", "I write to request prior authorization for CPT 27447.", True, False),
        ("request.ask", "I ask that you authorize CPT 27447 (total knee arthroplasty).", False, True),
        ("new.1", "CPT 27447 is medically necessary.", True, True),
        ("new.1", "CPT 27447 meets each coverage criterion.", True, True),
        ("new.1", "CPT 27447 does not meet the plan's criteria.", True, True),
        ("new.1", "CPT 27447 satisfies the guideline's indications.", True, True),
        ("grounds.27447.1", "Total knee arthroplasty is medically necessary.", True, True),
        ("grounds.27447.1", "She meets the criteria for severe osteoarthritis.", True, True),
        ("grounds.27447.1", "Assistance is necessary on stairs; physical therapy goals were not met.", True, False),
        ("grounds.20206.1", "Total knee arthroplasty is medically necessary.", True, False),
    ],
)
def test_rule_5_for_a_code_with_no_criteria(sid: str, text: str, grounded: bool, flagged: bool) -> None:
    case = _mixed(rationale=grounded)
    decision = decide(case, load_kb(), DAY)
    issues = necessity_issues([_sentence(sid, text)], decision)
    assert bool(issues) is flagged, issues
    assert all(i.rule == 5 and "27447" in i.message for i in issues)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("CPT 27447 meets each coverage criterion.", "says 27447 is met, but its verdict is not assessed"),
        ("The record rules out each exclusion for CPT 27447.", "no criteria were checked for it"),
        ("CPT 20206 was not assessed against criteria.", "says 20206 is not assessed, but its verdict is met"),
    ],
)
def test_rule_7_for_a_code_with_no_criteria(text: str, fragment: str) -> None:
    decision = decide(_mixed(), load_kb(), DAY)
    issues = consistency_issues([], decision, only=[_sentence("new.1", text)])
    assert any(i.rule == 7 and fragment in i.message for i in issues), issues


def _drafted(tmp_path: Path) -> tuple[Path, Path]:
    code, _, err = run_cli("draft", str(KNEE), "-o", str(tmp_path), "--date", "2026-11-21")
    assert code == 0, err
    return tmp_path / "knee-arthroplasty-001.lmn.md", tmp_path / "knee-arthroplasty-001.lmn.ledger.json"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # the summary sentence edited into a verdict no criteria back
        (
            "The case for CPT 27447 rests on the clinical findings documented in the record, set out below.",
            "CPT 27447 meets each coverage criterion set out below.",
        ),
        # a sentence added
        ("## Request\n", "## Request\n\nCPT 27447 meets each coverage criterion.\n\n"),
    ],
    ids=["edited", "added"],
)
def test_validate_rejects_saying_27447_meets_each_coverage_criterion(tmp_path: Path, old: str, new: str) -> None:
    letter, ledger = _drafted(tmp_path)
    assert run_cli("validate", str(letter), "--ledger", str(ledger))[0] == 0
    text = letter.read_text()
    assert old in text
    letter.write_text(text.replace(old, new, 1))
    code, out, err = run_cli("validate", str(letter), "--ledger", str(ledger), "--json")
    assert code == 1, out + err
    issues = json.loads(out)["issues"]
    assert {5, 7} <= {i["rule"] for i in issues if "27447" in i["message"]}, issues


def test_validate_holds_each_rationale_sentence_to_its_entry(tmp_path: Path) -> None:
    letter, ledger = _drafted(tmp_path)
    letter.write_text(letter.read_text().replace("for less than 3 weeks", "for less than 5 weeks", 1))
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 1 and "grounds.27447.4" in out and "5" in out
    # Deleting every rationale sentence leaves the request resting on nothing.
    letter, ledger = _drafted(tmp_path / "again")
    head, grounds = letter.read_text().split("## Documented clinical grounds")
    grounds, tail = grounds.split("## Request")
    letter.write_text(head + re.sub(r"(?m)^- .*\n", "", grounds) + "## Request" + tail)
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 1 and "the only support of 'request.ask'" in out, out


def test_a_rationale_sentence_that_cites_no_entry_fails_rule_1() -> None:
    from lettergen.validation.rules import validate_letter

    d = api.draft(api.load_case(KNEE), letter_date=DAY)
    letter = d.letter.model_copy(deep=True)
    letter.sentence("grounds.27447.1").facts = ["27447.rationale.9"]
    result = validate_letter(letter, d.case, d.decision, load_kb())
    assert result.errors[0].rule == 1 and "27447.rationale.9" in result.errors[0].message
    assert {i.rule for i in result.errors} == {1, 2}  # its grade and date are then grounded in nothing


# -- in and out ---------------------------------------------------------------------------------------------


def test_fhir_carries_the_label_and_rationale() -> None:
    from lettergen.case.fhir_in import RATIONALE_SYSTEM, case_from_bundle
    from lettergen.outputs.fhir_out import letter_bundle, validated

    d = api.draft(api.load_case(KNEE), letter_date=DAY)
    bundle = validated(letter_bundle(d.letter, d.case, d.decision, load_kb(), DAY))
    resources = [e["resource"] for e in bundle["entry"]]
    sr = next(r for r in resources if r["resourceType"] == "ServiceRequest")
    assert sr["code"]["text"] == "Total knee arthroplasty" and len(sr["supportingInfo"]) == 5
    ext = next(e for e in sr["extension"] if e["url"].endswith("necessity-information"))["extension"]
    assert {"url": "verdict", "valueCode": "not_assessed"} in ext and not [e for e in ext if e["url"] == "policy"]
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    assert [o["code"]["coding"][0]["system"] for o in obs] == [RATIONALE_SYSTEM] * 5
    assert obs[0]["derivedFrom"][0]["display"].startswith("Left knee radiographs")
    back = case_from_bundle(json.loads(json.dumps(bundle)), "b.json")
    assert back.services == d.case.services and not back.facts


def test_a_rationale_observation_must_be_whole_and_pointed_to() -> None:
    from lettergen.case.fhir_in import case_from_bundle
    from lettergen.errors import CaseError
    from lettergen.outputs.fhir_out import case_bundle

    case = api.load_case(KNEE).case
    bundle = case_bundle(case)
    sr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest")
    # Other supporting information (here a reference outside the Bundle) is not read.
    sr["supportingInfo"].insert(0, {"reference": "DocumentReference/elsewhere"})
    assert case_from_bundle(copy.deepcopy(bundle), "b.json").services == case.services
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    del obs["effectiveDateTime"]
    with pytest.raises(CaseError, match=r"\(Observation\)\.effectiveDateTime: is required"):
        case_from_bundle(copy.deepcopy(bundle), "b.json")
    sr["supportingInfo"] = sr["supportingInfo"][:1]
    with pytest.raises(CaseError, match=r"no ServiceRequest\.supportingInfo points to it"):
        case_from_bundle(bundle, "b.json")


def test_the_polish_lock_hides_the_rationale_and_label() -> None:
    from lettergen.polish.lock import case_literals

    case = api.load_case(KNEE).case
    values = case_literals(case, api.check(case), load_kb())
    assert "Total knee arthroplasty" in values and "Orthopaedic surgery clinic note" in values
    assert case.services[0].rationale[0].statement in values


def test_batch_counts_not_assessed_and_skips_a_code_with_nothing_to_rest_on(tmp_path: Path) -> None:
    src = tmp_path / "cases"
    src.mkdir()
    (src / "knee.yaml").write_text(KNEE.read_text())
    bare = _knee(rationale=False).model_dump(mode="json")
    bare["case_id"] = "knee-bare-001"
    (src / "bare.yaml").write_text(yaml.safe_dump(bare))
    code, out, err = run_cli("batch", str(src / "knee.yaml"), str(src / "bare.yaml"), "-o", str(tmp_path / "out"))
    assert code == 0, out + err
    assert re.search(r"27447\s+not_assessed\s+2", out), out
    report = {r["case_id"]: r for r in json.loads((tmp_path / "out" / "batch-report.json").read_text())}
    assert report["knee-arthroplasty-001"]["status"] == "ok"
    assert report["knee-bare-001"]["status"] == "skipped"
    assert report["knee-bare-001"]["verdicts"] == {"27447": "not_assessed"}


def test_init_writes_a_label_and_rationale_for_a_code_with_no_criteria(tmp_path: Path) -> None:
    out = tmp_path / "case.yaml"
    code, _, err = run_cli("init", "--code", "20206", "--code", "27447", "-o", str(out))
    assert code == 0, err
    data = yaml.safe_load(out.read_text())
    assert [s["code"] for s in data["services"]] == ["20206", "27447"]
    assert {"code", "label", "units", "rationale"} <= set(data["services"][1])
    assert "no criteria on file" in out.read_text()
    code, _, err = run_cli("init", "--code", "2744")
    assert code == 2 and "is not a CPT code" in err
