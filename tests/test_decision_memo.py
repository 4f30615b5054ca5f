"""A decision is remembered per case object (api.check), which is sound only because a case cannot change.

These tests hold both halves: the memo answers only for the very case (and knowledge base) it decided,
and a case, with its facts, refuses every change in place.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from conftest import CHORDOMA, EXAMPLES

from lettergen import api
from lettergen.case import Case, Facts
from lettergen.criteria import decide
from lettergen.kb import load_kb

KB = load_kb()


def fresh(case: Case) -> Any:
    api._DECISIONS.clear()
    return api.check(case, KB)


def test_a_second_check_of_the_same_case_is_the_first_decision() -> None:
    case = api.load_case(CHORDOMA).case
    first = fresh(case)
    assert api.check(case, KB) is first
    assert first == decide(case, KB)
    assert api.draft(case, kb=KB).decision is first  # draft decides through check


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("appeal-*.yaml")), ids=lambda p: p.stem)
def test_the_deadline_follows_the_letter_type_asked(path: Any) -> None:
    case = api.load_case(path).case
    by_type = {t: api.check(case, KB, letter_type=t) for t in (None, "appeal", "external_review")}
    api._DECISIONS.clear()
    assert by_type == {t: api.check(case, KB, letter_type=t) for t in by_type}


def test_a_changed_case_is_a_new_case_with_its_own_decision() -> None:
    case = api.load_case(CHORDOMA).case
    before = fresh(case)
    bleeding = case.facts["uncorrected_coagulopathy"].model_copy(update={"value": True})  # an exclusion applies
    changed = case.model_copy(update={"facts": Facts({**case.facts, "uncorrected_coagulopathy": bleeding})})
    after = api.check(changed, KB)
    assert after is not before
    assert after == decide(changed, KB)
    assert after != before


def test_another_knowledge_base_is_not_answered_from_the_memo() -> None:
    case = api.load_case(CHORDOMA).case
    first = fresh(case)
    other = dataclasses.replace(KB)
    assert api.check(case, other) is not first
    assert api.check(case, other) == first


def test_a_recycled_address_is_not_taken_for_the_case_that_had_it() -> None:
    a = api.load_case(CHORDOMA).case
    b = a.model_copy(update={"facts": Facts()})
    stale = fresh(a)
    # As if b now sat where a case decided earlier had been: the entry's case is not b.
    api._DECISIONS[(id(b), id(KB), None)] = (weakref.ref(a), KB, stale)
    assert api.check(b, KB) == decide(b, KB) != stale


def test_a_case_built_without_validation_is_never_remembered() -> None:
    case = api.load_case(CHORDOMA).case
    loose = Case.model_construct(**{**dict(case), "facts": dict(case.facts)})  # its facts could change
    fresh(loose)
    assert not api._DECISIONS


def test_the_memo_is_bounded() -> None:
    case = api.load_case(CHORDOMA).case
    fresh(case)
    copies = [case.model_copy() for _ in range(api._DECISIONS_MAX + 5)]
    for c in copies:
        api.check(c, KB)
    assert len(api._DECISIONS) <= api._DECISIONS_MAX


CHANGES: list[tuple[str, Callable[[Facts], Any]]] = [
    ("set", lambda f: f.__setitem__("x", None)),
    ("delete", lambda f: f.__delitem__(next(iter(f)))),
    ("clear", lambda f: f.clear()),
    ("pop", lambda f: f.pop(next(iter(f)))),
    ("popitem", lambda f: f.popitem()),
    ("setdefault", lambda f: f.setdefault("x", None)),
    ("update", lambda f: f.update({"x": None})),
    ("in-place or", lambda f: f.__ior__({"x": None})),
]


@pytest.mark.parametrize("change", [c for _, c in CHANGES], ids=[n for n, _ in CHANGES])
def test_facts_refuse_every_change_in_place(change: Callable[[Facts], Any]) -> None:
    case = api.load_case(CHORDOMA).case
    before = dict(case.facts)
    with pytest.raises(TypeError, match="read-only"):
        change(case.facts)
    assert dict(case.facts) == before


@pytest.mark.parametrize(
    "clone",
    [lambda c: pickle.loads(pickle.dumps(c)), copy.deepcopy, copy.copy, lambda c: c.model_copy(deep=True)],
    ids=["pickle", "deepcopy", "copy", "model_copy"],
)
def test_a_copied_case_keeps_read_only_facts(clone: Callable[[Case], Case]) -> None:
    case = api.load_case(CHORDOMA).case
    copied = clone(case)
    assert copied == case
    assert type(copied.facts) is Facts
