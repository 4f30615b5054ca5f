"""The public clinical evaluation: every vignette, written from the payer policies before the engine ran, agrees."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from lettergen import api
from lettergen.errors import LettergenError

VIGNETTES = ROOT / "examples" / "vignettes"


def test_every_vignette_agrees_with_its_written_expectation() -> None:
    code, out, err = run_cli("eval", "cases", str(VIGNETTES), "--json")
    report = json.loads(out)
    disagreements = [r for r in report["rows"] if r["expected"] != r["actual"]]
    assert code == 0 and disagreements == [], disagreements or err
    assert len({r["vignette"] for r in report["rows"]}) >= 30


def test_every_policy_has_met_not_met_and_insufficient_vignettes() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for path in sorted((VIGNETTES / "cases").glob("*.yaml")):
        for s in api.check(api.load_case(path).case).services:
            seen[s.policy.split("@")[0]].add(s.verdict)
    for policy, verdicts in seen.items():
        assert verdicts >= {"met", "not_met", "insufficient"}, policy


BRITISH = re.compile(
    r"\b(tumour|haematolog|anaesth|orthopaedic|oesophag|centre|favour|behaviour|colour|programme|randomis|"
    r"organis|recognis|paediatric|labour|judgement|analys(?:e|ed|ing)\b|localis|characteris)",
    re.I,
)


def test_templates_criteria_and_findings_are_in_us_english() -> None:
    # What reaches a letter: templates, criteria text and finding statements (a source's own title may differ).
    texts = [p.read_text() for p in (ROOT / "templates").glob("*.j2")]
    texts += [p.read_text() for p in (ROOT / "criteria").glob("*.yaml")]
    kb = api.load_kb()
    texts += [f.statement for s in kb.sources.values() for f in s.findings]
    hits = sorted({m.group(0) for t in texts for m in BRITISH.finditer(t)})
    assert hits == [], hits


DRAFTED = [
    *sorted((ROOT / "examples").glob("[a-z]*.yaml")),
    *sorted((VIGNETTES / "cases").glob("appeal-*.yaml")),
    *sorted((VIGNETTES / "cases").glob("mixed-*.yaml")),
]


@pytest.mark.parametrize("path", DRAFTED, ids=lambda p: p.stem)
def test_no_cited_sentence_is_said_twice_in_a_letter(path: Path) -> None:
    # A finding, a chart fact or a coding conflict is stated once per letter, whatever the letter type: the
    # standard-of-care rebuttal takes its findings out of the criteria, a conflict is said under one code.
    loaded = api.load_case(path)
    for ltype in ("lmn", "appeal", "external_review", "peer_to_peer", "determination"):
        try:
            d = api.draft(loaded, letter_type=ltype, letter_date=date(2026, 12, 1))
        except LettergenError:  # no denial to answer, or nothing to draft
            continue
        texts = [s.text for s in d.letter.sentences if s.kind == "claim"]
        assert len(texts) == len(set(texts)), (ltype, [t for t in texts if texts.count(t) > 1][:2])
