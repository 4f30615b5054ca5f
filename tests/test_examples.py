"""Every example case decides as tests/data/examples-expected.yaml says, including payer overlays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api

EXPECTED: dict[str, dict[str, str]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "examples-expected.yaml").read_text()
)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_verdicts(name: str) -> None:
    loaded = api.load_case(EXAMPLES / name)
    decision = api.check(loaded.case)
    assert {s.code: s.verdict for s in decision.services} == {str(k): v for k, v in EXPECTED[name].items()}


def test_every_example_is_listed() -> None:
    listed = set(EXPECTED)
    present = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert present - listed == set(), "add the new example's expected verdicts to tests/data/examples-expected.yaml"


def test_verdict_families_cover_every_value() -> None:
    verdicts = {v for codes in EXPECTED.values() for v in codes.values()}
    assert verdicts == {"met", "not_met", "insufficient", "not_assessed"}


def test_payer_overlay_changes_the_verdict() -> None:
    loaded = api.load_case(EXAMPLES / "ablation-cryo-osteoid-osteoma.yaml")
    default = api.check(loaded.case).service("20983")
    overlay_case = loaded.case.model_copy(
        update={"payer": loaded.case.payer.model_copy(update={"policy": "bcbs-mp-429"})}
    )
    overlay = api.check(overlay_case).service("20983")
    # The default criteria cover cryoablation of bone for osteolytic metastases only (the one payer policy on
    # file); the overlay adds the reason: the policy treats other bone tumors as investigational.
    assert (default.verdict, overlay.verdict) == ("not_met", "not_met")
    assert [c.id for c in default.criteria if c.status == "not_met"] == ["eligible-lesion"]
    assert [c.id for c in overlay.criteria if c.status == "not_met"] == [
        "mp429-indication",
        "other-bone-investigational",
    ]
    assert default.policy.startswith("bone-ablation-cryo@") and overlay.policy.startswith("bone-ablation-cryo-bcbs")


def test_chordoma_check_json_contract() -> None:
    code, out, _ = run_cli("check", str(CHORDOMA), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["case_id"] == "chordoma-gluteal-001"
    s20206, s38505 = data["services"]
    assert (s20206["code"], s20206["verdict"]) == ("20206", "met")
    assert (s38505["code"], s38505["verdict"]) == ("38505", "insufficient")
    assert [m["id"] for m in s38505["missing_facts"]] == ["node_enlarged_or_suspicious"]
    assert all(c["citations"] for c in s20206["criteria"])
    assert set(s20206["criteria"][0]) == {"id", "kind", "text", "status", "facts", "citations", "basis", "ruled_out"}
    assert s20206["criteria"][0]["basis"] == ["ssa-1862-a-1-a.reasonable-necessary"]


def test_bundled_guidance_is_a_conflict_with_its_reason() -> None:
    loaded = api.load_case(EXAMPLES / "ablation-rfa-bone-metastasis.yaml")
    decision = api.check(loaded.case)
    conflicts = decision.service("20982").conflicts
    assert [c.codes for c in conflicts] == [("20982", "77013")]
    assert conflicts[0].reason and conflicts[0].citations
    assert decision.service("77013").verdict == "not_met"


def test_young_2015_figures_reach_the_determination() -> None:
    d = api.draft(api.load_case(CHORDOMA), letter_type="determination", fmt="txt")
    assert "130.4 months" in d.text and "159.3 months" in d.text
    refs = " ".join(d.letter.sentence(f"reference.{s}").text for s in d.letter.references)
    assert "10.1155/2015/517657" in refs and "26843835" in refs
