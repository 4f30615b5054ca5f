"""Rule 6 (placeholders and promises in the template's own words)."""

from __future__ import annotations

import pytest
from conftest import CHORDOMA

from lettergen import api
from lettergen.knowledge.store import load_kb
from lettergen.letter.render import Sentence
from lettergen.validation.rules import template_text_issues

KB = load_kb()
CASE = api.load_case(CHORDOMA, kb=KB).case


def sentence(i: int, text: str) -> Sentence:
    return Sentence(id=f"s{i}", text=text, kind="structural", claims=[], citations=[], facts=[], origin="template")


RULE6 = [
    # text, messages expected (empty: no issue)
    ("The biopsy decides the treatment plan.", []),
    ("The tissue result will decide the plan.", []),  # a trigger, but neither pattern
    ("Mean change 12% (p = 0.05).", []),
    ("This biopsy is guaranteed to find the answer.", ["makes a guarantee or absolute promise ('guaranteed')"]),
    ("A RISK-FREE procedure.", ["makes a guarantee or absolute promise ('RISK-FREE')"]),
    ("Treatment will cure the tumour.", ["makes a guarantee or absolute promise ('will cure')"]),
    ("Signed by [NAME OF PHYSICIAN].", ["contains an unfilled placeholder"]),
    ("Dear {{ patient }},", ["contains an unfilled placeholder"]),
    ("Results TBD at follow-up.", ["contains an unfilled placeholder"]),
    ("See <<attachment>>.", ["contains an unfilled placeholder"]),
]


@pytest.mark.parametrize(("text", "expected"), RULE6, ids=[t for t, _ in RULE6])
def test_rule6_issues(text: str, expected: list[str]) -> None:
    # Among ordinary sentences, so that the prefilter has to find the one that matters.
    sentences = [sentence(0, "The mass measured 4 cm."), sentence(1, text), sentence(2, "Ölçü yapıldı.")]
    issues = template_text_issues(sentences, CASE)
    assert [i.message for i in issues] == expected
    assert all(i.rule == 6 and i.sentence == "s1" for i in issues)


def test_case_text_is_exempt() -> None:
    # Words the case itself holds print as typed: they are the chart's, not a promise of the template.
    fid, fact = next(iter(CASE.facts.items()))
    typed = "the graft is guaranteed to heal"
    case = CASE.model_copy(update={"facts": {**CASE.facts, fid: fact.model_copy(update={"evidence": typed})}})
    said = [sentence(0, f"The chart notes that {typed}.")]
    assert template_text_issues(said, case) == []
    assert [i.rule for i in template_text_issues(said, CASE)] == [6]
