"""The criteria engine: a pure function from a case and the knowledge base to a decision.

Evaluation is three-valued (Kleene): ``True``, ``False`` and ``None`` for unknown. An absent fact is
unknown, never false, so a missing chart note can make a verdict ``insufficient`` but never
``not_met``. A requested code with no criteria on file is not evaluated at all: its verdict is
``not_assessed`` (see :class:`ServiceDecision`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import product
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lettergen.case.model import Case, Fact, fact_field
from lettergen.errors import CaseError
from lettergen.knowledge.policies import (
    AGE,
    AllOf,
    AnyOf,
    Criterion,
    DiagnosisTest,
    FactTest,
    NotOf,
    Policy,
    Question,
    Rule,
    rule_facts,
)
from lettergen.knowledge.store import KnowledgeBase

Tri = bool | None
Status = Literal["met", "not_met", "unknown"]
Verdict = Literal["met", "not_met", "insufficient", "not_assessed"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriterionResult(_Out):
    id: str
    kind: Literal["indication", "exclusion", "consideration", "bundling"]
    text: str
    status: Status
    facts: tuple[str, ...]
    citations: tuple[str, ...]
    # The findings that make it a coverage condition (indications, exclusions); a consideration has none.
    basis: tuple[str, ...] = ()
    # An exclusion's words for when it does not apply.
    ruled_out: str | None = None


class MissingFact(_Out):
    id: str
    question: str


class Conflict(_Out):
    codes: tuple[str, ...]
    reason: str
    citations: tuple[str, ...]


class RationaleEntry(_Out):
    """One entry of the clinician's documented rationale for a code with no criteria on file: ``id`` is the
    chart-fact id a letter's sentence cites (``27447.rationale.1``)."""

    id: str
    statement: str
    source: str
    date: date


class ServiceDecision(_Out):
    """The decision for one requested code. ``verdict`` is one of:

    - ``met``: every indication of the code's criteria holds and the record rules out every exclusion;
    - ``not_met``: an indication is false or an exclusion applies (or the code is bundled into another
      requested code, by the other code's criteria);
    - ``insufficient``: neither yet; ``missing_facts`` lists the smallest set of questions whose answers can
      still change the verdict;
    - ``not_assessed``: no criteria for the code are on file, so nothing was checked: ``policy`` is None,
      ``criteria`` and ``missing_facts`` are empty, ``label`` is the clinician's own (the case's
      ``services[].label``, None when not given) and ``rationale`` lists the clinician's documented rationale
      (the case's ``services[].rationale``). A payer letter may request such a code on that rationale alone,
      when there is one, and claims nothing about any policy for it; it never says the code is medically
      necessary or meets anything (validator rules 5 and 7).

    ``rationale`` is empty for every other verdict (the rationale entries of a code with criteria on file are
    clinical history; its criteria decide it)."""

    code: str
    label: str | None
    policy: str | None
    verdict: Verdict
    criteria: tuple[CriterionResult, ...]
    missing_facts: tuple[MissingFact, ...]
    conflicts: tuple[Conflict, ...]
    rationale: tuple[RationaleEntry, ...] = ()


class Deadline(_Out):
    kind: str
    due: date | None
    basis: str
    citations: tuple[str, ...]
    computed_from: date | None = None
    notes: tuple[str, ...] = ()
    level: int | None = None
    expedited: bool = False
    decision_within: str | None = None
    receipt_presumed: bool = False


class Decision(_Out):
    """Every requested code's :class:`ServiceDecision` (verdict ``met``, ``not_met``, ``insufficient`` or
    ``not_assessed``), in the order the case requests them, and the appeal deadline when the case answers a
    denial. ``lettergen check --json`` prints it; the ledger keeps it."""

    case_id: str
    services: tuple[ServiceDecision, ...]
    deadline: Deadline | None = None

    def service(self, code: str) -> ServiceDecision:
        return next(s for s in self.services if s.code == code)

    def by_verdict(self, verdict: Verdict) -> list[ServiceDecision]:
        return [s for s in self.services if s.verdict == verdict]


# -- unit conversion for number facts ---------------------------------------------------------
_UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.1),
    "cm": ("length", 1.0),
    "m": ("length", 100.0),
    "day": ("time", 1.0),
    "days": ("time", 1.0),
    "week": ("time", 7.0),
    "weeks": ("time", 7.0),
    "g": ("mass", 1.0),
    "kg": ("mass", 1000.0),
}


def convert(value: float, unit: str | None, target: str | None) -> float | None:
    """``value`` in ``unit`` expressed in ``target``; None when the units cannot be converted."""
    if unit is None or target is None or unit == target:
        return value
    a, b = _UNITS.get(unit), _UNITS.get(target)
    if a is None or b is None or a[0] != b[0]:
        return None
    return value * a[1] / b[1]


# -- evaluation -------------------------------------------------------------------------------
# A fact as the rules see it: its value and the unit it was recorded in.
Value = tuple[object, str | None]


@dataclass(frozen=True)
class Facts:
    """What a rule can read: the case's facts (plus the derived age) and its diagnosis codes."""

    values: Mapping[str, Value]
    dx: tuple[str, ...]
    questions: Mapping[str, Question]

    def with_values(self, extra: Mapping[str, Value]) -> Facts:
        return Facts({**self.values, **extra}, self.dx, self.questions)


def age_on(birth: date, when: date) -> int:
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def case_facts(case: Case, kb: KnowledgeBase, on: date) -> Facts:
    """The case's facts, with the patient's age on the date ``on``."""
    values: dict[str, Value] = {fid: (f.value, f.unit) for fid, f in case.facts.items()}
    values[AGE.id] = (age_on(case.patient.birth_date, on), AGE.unit)
    return Facts(values, tuple(d.code for d in case.diagnoses), kb.questions)


def _fact_test(t: FactTest, fact: Value | None, question: Question) -> Tri:
    if fact is None:
        return None
    v, unit = fact
    if t.in_ is not None:
        return v in t.in_
    if t.is_ is not None:
        return bool(v == t.is_ and type(v) is type(t.is_)) if isinstance(t.is_, bool) else v == t.is_
    bounds = ((t.gt, float.__gt__), (t.ge, float.__ge__), (t.lt, float.__lt__), (t.le, float.__le__))
    for bound, op in bounds:
        if bound is not None:
            num = convert(float(v), unit, question.unit) if isinstance(v, int | float) else None
            return None if num is None else op(num, float(bound))
    return v is True


def evaluate(rule: Rule, facts: Facts) -> Tri:
    """Kleene evaluation of a rule against a case's facts."""
    if isinstance(rule, FactTest):
        return _fact_test(rule, facts.values.get(rule.fact), facts.questions[rule.fact])
    if isinstance(rule, DiagnosisTest):
        return any(d.startswith(p) for d in facts.dx for p in rule.dx)
    if isinstance(rule, NotOf):
        inner = evaluate(rule.not_, facts)
        return None if inner is None else not inner
    assert isinstance(rule, AllOf | AnyOf)
    # One value settles the group (false for `all`, true for `any`); otherwise any unknown leaves it unknown.
    settles, children = (True, rule.any) if isinstance(rule, AnyOf) else (False, rule.all)
    seen_unknown = False
    for r in children:
        v = evaluate(r, facts)
        if v is settles:
            return settles
        seen_unknown |= v is None
    return None if seen_unknown else not settles


_STATUS: dict[Tri, Status] = {True: "met", False: "not_met", None: "unknown"}
Kind = Literal["indication", "exclusion", "consideration"]


def _result(c: Criterion, kind: Kind, value: Tri) -> CriterionResult:
    # For an exclusion, "met" means the exclusion does NOT apply: met is always the favorable side.
    status = _STATUS[value] if kind != "exclusion" else _STATUS[None if value is None else not value]
    return CriterionResult(
        id=c.id,
        kind=kind,
        text=c.text,
        status=status,
        facts=rule_facts(c.rule),
        citations=list(dict.fromkeys(c.basis + c.citations)),
        basis=list(c.basis),
        ruled_out=c.ruled_out,
    )


def _verdict(statuses: Iterable[tuple[str, Status]]) -> Verdict:
    """met: every indication true and every exclusion ruled out; not_met: one fails; else insufficient."""
    seen = list(statuses)
    if any(st == "not_met" for _, st in seen):
        return "not_met"
    if all(st == "met" for _, st in seen):
        return "met"
    return "insufficient"


# -- the questions whose answers can still change a verdict -------------------------------------
_MAX_ASSIGNMENTS = 65536


def _domain(q: Question, rules: Iterable[Rule]) -> list[object]:
    """Values of a fact that every test of it can tell apart: the choices, true and false, or each side of a
    threshold. An answer outside these behaves as one of them, so trying these tries every answer."""
    if q.type == "bool":
        return [True, False]
    if q.type == "choice":
        return list(q.choices)
    points: set[object] = set()
    for r in rules:
        for t in _tests(r, q.id):
            if t.is_ is not None:
                points.add(t.is_)
            if t.in_ is not None:
                points.update(t.in_)
            for b in (t.gt, t.ge, t.lt, t.le):
                if b is not None:
                    points.update((b - 0.5, float(b), b + 0.5))
    other: object = object()  # an answer no test names
    if q.type == "number":
        numbers: list[object] = [*sorted(p for p in points if isinstance(p, float))]
        return numbers or [0.0]
    return [*sorted(points, key=repr), other]


def _tests(rule: Rule, fid: str) -> Iterable[FactTest]:
    if isinstance(rule, FactTest):
        if rule.fact == fid:
            yield rule
    elif isinstance(rule, AllOf | AnyOf):
        for r in rule.all if isinstance(rule, AllOf) else rule.any:
            yield from _tests(r, fid)
    elif isinstance(rule, NotOf):
        yield from _tests(rule.not_, fid)


def missing_facts(gating: list[tuple[Criterion, str]], facts: Facts) -> list[str]:
    """The smallest set of unanswered questions whose answers can still change the verdict, most decisive first.

    A question matters when some answers to the other open questions leave the verdict depending on it; it is
    computed exactly by trying every combination of the answers each test can tell apart (the rules are small).
    Its weight is the share of those combinations in which it decides the verdict."""
    rules = [c.rule for c, _ in gating]
    unknown: list[str] = []
    for r in rules:
        unknown += [f for f in rule_facts(r) if f not in facts.values and f not in unknown]
    if not unknown:
        return []
    domains = [_domain(facts.questions[f], rules) for f in unknown]
    total = 1
    for d in domains:
        total *= len(d)
    if total > _MAX_ASSIGNMENTS:  # too many to try: ask every open question, in order of first use
        return unknown

    def verdict_of(assignment: tuple[object, ...]) -> Verdict:
        env = facts.with_values({f: (v, facts.questions[f].unit) for f, v in zip(unknown, assignment, strict=True)})
        return _verdict(
            (kind, _result(c, kind, evaluate(c.rule, env)).status)  # type: ignore[arg-type]
            for c, kind in gating
        )

    verdicts = {a: verdict_of(a) for a in product(*domains)}
    weight: dict[str, float] = {}
    for i, f in enumerate(unknown):
        groups: dict[tuple[object, ...], set[Verdict]] = {}
        for a, v in verdicts.items():
            groups.setdefault(a[:i] + a[i + 1 :], set()).add(v)
        deciding = sum(1 for vs in groups.values() if len(vs) > 1)
        if deciding:
            weight[f] = deciding / len(groups)
    return sorted(weight, key=lambda f: (-weight[f], unknown.index(f)))


def select_policies(case: Case, kb: KnowledgeBase, file: str = "case") -> dict[str, Policy]:
    """The policy that governs each requested code (payer overlay first, then default); a code with no criteria
    on file has none (its verdict is ``not_assessed``)."""
    if case.payer.policy and case.payer.policy not in kb.policy_sets():
        # Not echoed: whatever was written there (a member id, say) is not a policy set, and may be patient data.
        known = ", ".join(s for s in kb.policy_sets() if s != "default") or "none"
        raise CaseError(file, "payer.policy", f"is not a payer policy set on file (known: {known})")
    out: dict[str, Policy] = {}
    for s in case.services:
        pol = kb.policy_for(s.code, case.payer.policy)
        if pol is not None:
            out[s.code] = pol
    return out


def check_facts(case: Case, kb: KnowledgeBase, file: str = "case") -> None:
    """Facts must be declared (by any policy on file, or as common history in criteria/_vocabulary.yaml) and
    carry values of the declared type. A fact the codes requested do not read is kept as clinical history.
    Every problem is reported at once (CaseError.problems)."""
    problems: list[tuple[str, str]] = []
    try:
        select_policies(case, kb, file)
    except CaseError as exc:
        problems += exc.problems
    for fid, fact in case.facts.items():
        if fid == AGE.id:
            problems.append(("facts.age", "age is derived from patient.birth_date and the date of service; remove it"))
            continue
        q = kb.questions.get(fid)
        if q is None:
            # The id is not named: an unknown key may be patient data (a member id put there). A declared id
            # close to it is, as a suggestion.
            close = difflib.get_close_matches(fid, list(kb.questions), n=1, cutoff=0.8)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(
                (
                    fact_field(fid, list(case.facts), kb.questions),
                    f"unknown fact id; {hint}see 'lettergen init' or criteria/_vocabulary.yaml",
                )
            )
            continue
        problem = _type_problem(q, fact)
        if problem:
            problems.append((f"facts.{fid}.value", problem))
    try:
        _check_ages(case, file)
    except CaseError as exc:
        problems += exc.problems
    if problems:
        raise CaseError.many(file, problems)


def _check_ages(case: Case, file: str) -> None:
    """The derived age must lie in its declared range on every date it is counted to (a birth date after a date
    of service, or one more than 130 years before it, is a typo)."""
    days: list[tuple[str, date | None]] = [("patient.birth_date", case.letter.date or date.today())]
    days += [(f"services[{i}].date_of_service", s.date_of_service) for i, s in enumerate(case.services)]
    for where, day in days:
        if day is not None and _out_of_range(age_on(case.patient.birth_date, day), AGE):
            hint = "" if where == "patient.birth_date" else " (check patient.birth_date)"
            raise CaseError(file, where, f"gives an age below {AGE.min:g} or above {AGE.max:g} years{hint}")


def _type_problem(q: Question, fact: Fact) -> str | None:
    v = fact.value
    if q.type == "bool" and not isinstance(v, bool):
        return "must be true or false"
    if q.type == "number":
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"must be a number{' in ' + q.unit if q.unit else ''}"
        if fact.unit and convert(1.0, fact.unit, q.unit) is None:
            # A unit lettergen knows is named; any other text is not (it may be patient data put there).
            said = f"unit '{fact.unit}'" if fact.unit in _UNITS or fact.unit == q.unit else "the unit"
            return f"{said} cannot be converted to '{q.unit}'"
        if not _finite(v):
            return "must be a finite number"
        if _out_of_range(convert(float(v), fact.unit, q.unit), q):
            return f"must be a number {q.range_text()}"
    if q.type == "choice" and v not in q.choices:
        return f"must be one of: {', '.join(q.choices)}"
    if q.type == "text" and not isinstance(v, str):
        return "must be text"
    if q.type == "date" and not isinstance(v, date):
        return "must be a date (YYYY-MM-DD)"
    if fact.unit and q.type != "number":
        return "only number facts carry a unit"
    return None


def _finite(v: int | float) -> bool:
    """A number a float can hold (a 4,000-digit integer cannot; nor can NaN or infinity be compared)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _out_of_range(v: float | None, q: Question) -> bool:
    return v is None or not (q.min is None or q.min <= v) or not (q.max is None or v <= q.max)


def decide(case: Case, kb: KnowledgeBase, letter_date: date | None = None) -> Decision:
    """Decide every requested code. Pure: same case, knowledge base and date, same decision."""
    policies = select_policies(case, kb)
    letter_day = letter_date or case.letter.date or date.today()
    requested = [s.code for s in case.services]
    # Who bundles whom: bundled code -> (primary code, bundle entry)
    bundled_into = {
        b.code: (code, b)
        for code, pol in policies.items()
        for b in pol.bundles
        if b.code in requested and b.code != code
    }
    services: list[ServiceDecision] = []
    for svc in case.services:
        code = svc.code
        pol = policies.get(code)
        # Age on this service's own date (a course may start months after another service), else the letter's.
        svc_facts = case_facts(case, kb, svc.date_of_service or letter_day)
        gating: list[tuple[Criterion, str]] = []
        if pol is not None:
            gating += [(c, "indication") for c in pol.indications]
            gating += [(c, "exclusion") for c in pol.exclusions]
        results = [_result(c, kind, evaluate(c.rule, svc_facts)) for c, kind in gating]  # type: ignore[arg-type]
        conflicts = [
            Conflict(codes=[code, b.code], reason=b.reason, citations=list(b.citations))
            for b in (pol.bundles if pol is not None else ())
            if b.code in requested
        ]
        if code in bundled_into:
            primary, b = bundled_into[code]
            conflicts.append(Conflict(codes=[primary, code], reason=b.reason, citations=list(b.citations)))
            results.append(
                CriterionResult(
                    id=f"not-bundled-into-{primary}",
                    kind="bundling",
                    text=f"Not included in another requested service ({primary}).",
                    status="not_met",
                    facts=[],
                    citations=list(b.citations),
                )
            )
        if pol is None:
            # No criteria on file: nothing to check, unless another requested code's criteria bundle this one
            # (a failed bundling criterion: not_met, as for a code with criteria).
            services.append(
                ServiceDecision(
                    code=code,
                    label=svc.label,
                    policy=None,
                    verdict=_verdict((r.kind, r.status) for r in results) if results else "not_assessed",
                    criteria=results,
                    missing_facts=[],
                    conflicts=conflicts,
                    rationale=[]
                    if results
                    else [
                        RationaleEntry(id=fid, statement=r.statement, source=r.source, date=r.date)
                        for fid, r in zip(case.rationale_facts(code), svc.rationale, strict=True)
                    ],
                )
            )
            continue
        verdict = _verdict((r.kind, r.status) for r in results)
        missing: list[MissingFact] = []
        if verdict == "insufficient":
            missing = [MissingFact(id=f, question=kb.questions[f].prompt) for f in missing_facts(gating, svc_facts)]
        results += [_result(c, "consideration", evaluate(c.rule, svc_facts)) for c in pol.considerations]
        services.append(
            ServiceDecision(
                code=code,
                label=pol.label(code),
                policy=pol.ref,
                verdict=verdict,
                criteria=results,
                missing_facts=missing,
                conflicts=conflicts,
            )
        )
    return Decision(case_id=case.case_id, services=services)
