"""Rule 6 (placeholders and promises in the template's own words) and its cheap prefilter."""

from __future__ import annotations

import pytest
from conftest import CHORDOMA
from hypothesis import given, settings
from hypothesis import strategies as st

from lettergen import api
from lettergen.kb import load_kb
from lettergen.render import Sentence
from lettergen.validate import _RULE6_HINTS, _rule6_suspects, template_text_issues

KB = load_kb()
CASE = api.load_case(CHORDOMA, kb=KB).case


def sentence(i: int, text: str) -> Sentence:
    return Sentence(id=f"s{i}", text=text, kind="structural", claims=[], citations=[], facts=[], origin="template")


def suspects_one_by_one(sentences: list[Sentence]) -> list[Sentence]:
    """The definition the prefilter must keep: a sentence is a suspect when its lowercased text holds a trigger."""
    return [s for s in sentences if any(h in s.text.lower() for h in _RULE6_HINTS)]


# Pieces that make the search hard: triggers in any case, split triggers, non-ASCII letters (which make
# lowercasing change length: "İ" becomes two characters), and newlines.
TRICKY = ["WILL ", "Guarant", "[NAME", "wil", "l ", "ris", "k", "İ", "ö", "\n", " ", "x"]
pieces = st.sampled_from([*_RULE6_HINTS, *TRICKY])
texts = st.lists(pieces | st.text(max_size=6), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, max_size=12))
def test_prefilter_finds_exactly_the_sentences_that_hold_a_trigger(parts: list[str]) -> None:
    sentences = [sentence(i, t) for i, t in enumerate(parts)]
    assert _rule6_suspects(sentences) == suspects_one_by_one(sentences)
    assert _rule6_suspects(sentences) == suspects_one_by_one(sentences)  # again, from the memo


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


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["a", "b", "c", "d"], ["a", "e will ", "f"]),  # seen and new texts in the call that fills the memo
        (["a", "b", "c", "d will "], ["d will ", "a", "b", "c", "e"]),
        (["a", "b"], ["a", "b"]),  # only seen texts: nothing is added
        (["a"], ["b", "c", "d", "e", "f", "g will ", "a"]),  # one call with more texts than the memo holds
        ([], ["x will "] * 7),  # the same text many times
    ],
)
def test_a_full_trigger_memo_still_answers_every_sentence_of_the_call(
    monkeypatch: pytest.MonkeyPatch, first: list[str], second: list[str]
) -> None:
    # Found by a long hypothesis run: the memo was cleared to make room for a call's new texts, and the
    # call's texts seen before were then looked up in it (KeyError).
    from lettergen import validate

    monkeypatch.setattr(validate, "_TRIGGER_MEMO", {})
    monkeypatch.setattr(validate, "_TRIGGER_MEMO_MAX", 5)
    for texts in (first, second, first):
        sentences = [sentence(i, text) for i, text in enumerate(texts)]
        assert _rule6_suspects(sentences) == suspects_one_by_one(sentences)


def test_trigger_memo_starts_again_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from lettergen import validate

    monkeypatch.setattr(validate, "_TRIGGER_MEMO", {})
    monkeypatch.setattr(validate, "_TRIGGER_MEMO_MAX", 5)
    for round_ in range(4):
        sentences = [sentence(i, f"text {round_}.{i}" + (" will " if i % 2 else "")) for i in range(4)]
        assert _rule6_suspects(sentences) == suspects_one_by_one(sentences)
        assert len(validate._TRIGGER_MEMO) <= 5
