"""The public clinical evaluation: every vignette, written from the payer policies before the engine ran, agrees."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from conftest import ROOT, run_cli

from lettergen import api

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
