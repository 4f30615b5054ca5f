"""The criteria engine: a pure function from a case and the knowledge base to a decision.

Evaluation is three-valued (Kleene): ``True``, ``False`` and ``None`` for unknown. An absent fact is
unknown, never false, so a missing chart note can make a verdict ``insufficient`` but never
``not_met``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lettergen.case import Case, Fact
from lettergen.errors import CaseError
from lettergen.kb import KnowledgeBase
from lettergen.policies import (
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

Tri = bool | None
Status = Literal["met", "not_met", "unknown"]
Verdict = Literal["met", "not_met", "insufficient"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriterionResult(_Out):
    id: str
    kind: Literal["indication", "exclusion", "bundling"]
    text: str
    status: Status
    facts: tuple[str, ...]
    citations: tuple[str, ...]


class MissingFact(_Out):
    id: str
    question: str


class Conflict(_Out):
    codes: tuple[str, ...]
    reason: str
    citations: tuple[str, ...]


class ServiceDecision(_Out):
    code: str
    label: str
    policy: str
    verdict: Verdict
    criteria: tuple[CriterionResult, ...]
    missing_facts: tuple[MissingFact, ...]
    conflicts: tuple[Conflict, ...]


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
def _fact_test(t: FactTest, fact: Fact | None, question: Question) -> Tri:
    if fact is None:
        return None
    v = fact.value
    if t.in_ is not None:
        return v in t.in_
    if t.is_ is not None:
        return bool(v == t.is_ and type(v) is type(t.is_)) if isinstance(t.is_, bool) else v == t.is_
    bounds = ((t.gt, float.__gt__), (t.ge, float.__ge__), (t.lt, float.__lt__), (t.le, float.__le__))
    for bound, op in bounds:
        if bound is not None:
            num = convert(float(v), fact.unit, question.unit) if isinstance(v, int | float) else None
            return None if num is None else op(num, float(bound))
    return v is True


def evaluate(rule: Rule, case: Case, questions: dict[str, Question]) -> Tri:
    """Kleene evaluation of a rule against a case."""
    if isinstance(rule, FactTest):
        return _fact_test(rule, case.facts.get(rule.fact), questions[rule.fact])
    if isinstance(rule, DiagnosisTest):
        return any(d.code.startswith(p) for d in case.diagnoses for p in rule.dx)
    if isinstance(rule, NotOf):
        inner = evaluate(rule.not_, case, questions)
        return None if inner is None else not inner
    assert isinstance(rule, AllOf | AnyOf)
    # One value settles the group (false for `all`, true for `any`); otherwise any unknown leaves it unknown.
    settles, children = (True, rule.any) if isinstance(rule, AnyOf) else (False, rule.all)
    seen_unknown = False
    for r in children:
        v = evaluate(r, case, questions)
        if v is settles:
            return settles
        seen_unknown |= v is None
    return None if seen_unknown else not settles


_STATUS: dict[Tri, Status] = {True: "met", False: "not_met", None: "unknown"}


def _result(c: Criterion, kind: Literal["indication", "exclusion"], value: Tri) -> CriterionResult:
    # For an exclusion, "met" means the exclusion does NOT apply: met is always the favourable side.
    status = _STATUS[value] if kind == "indication" else _STATUS[None if value is None else not value]
    return CriterionResult(
        id=c.id, kind=kind, text=c.text, status=status, facts=rule_facts(c.rule), citations=list(c.citations)
    )


def select_policies(case: Case, kb: KnowledgeBase, file: str = "case") -> dict[str, Policy]:
    """The policy that governs each requested code (payer overlay first, then default)."""
    if case.payer.policy and case.payer.policy not in kb.policy_sets():
        known = ", ".join(s for s in kb.policy_sets() if s != "default") or "none"
        raise CaseError(file, "payer.policy", f"unknown payer policy '{case.payer.policy}' (known: {known})")
    out: dict[str, Policy] = {}
    for i, s in enumerate(case.services):
        pol = kb.policy_for(s.code, case.payer.policy)
        if pol is None:
            raise CaseError(
                file,
                f"services[{i}].code",
                f"{s.code} has no criteria on file (see 'lettergen criteria list')",
            )
        out[s.code] = pol
    return out


def check_facts(case: Case, kb: KnowledgeBase, file: str = "case") -> None:
    """Facts must be declared by the criteria in use and carry values of the declared type."""
    policies = select_policies(case, kb, file)
    declared = {q.id: q for p in policies.values() for q in p.questions}
    for fid, fact in case.facts.items():
        q = declared.get(fid)
        where = f"facts.{fid}"
        if q is None:
            hint = " (declared for other codes)" if fid in kb.questions else ""
            raise CaseError(file, where, f"unknown fact id{hint}; the criteria for {', '.join(policies)} do not ask it")
        problem = _type_problem(q, fact)
        if problem:
            raise CaseError(file, where + ".value", problem)


def _type_problem(q: Question, fact: Fact) -> str | None:
    v = fact.value
    if q.type == "bool" and not isinstance(v, bool):
        return "must be true or false"
    if q.type == "number":
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"must be a number{' in ' + q.unit if q.unit else ''}"
        if fact.unit and convert(1.0, fact.unit, q.unit) is None:
            return f"unit '{fact.unit}' cannot be converted to '{q.unit}'"
    if q.type == "choice" and v not in q.choices:
        return f"must be one of: {', '.join(q.choices)}"
    if q.type == "text" and not isinstance(v, str):
        return "must be text"
    if q.type == "date" and not isinstance(v, date):
        return "must be a date (YYYY-MM-DD)"
    if fact.unit and q.type != "number":
        return "only number facts carry a unit"
    return None


def decide(case: Case, kb: KnowledgeBase) -> Decision:
    """Decide every requested code. Pure: same case and knowledge base, same decision."""
    policies = select_policies(case, kb)
    requested = [s.code for s in case.services]
    # Who bundles whom: bundled code -> (primary code, bundle entry)
    bundled_into = {
        b.code: (code, b)
        for code, pol in policies.items()
        for b in pol.bundles
        if b.code in requested and b.code != code
    }
    services: list[ServiceDecision] = []
    for code in requested:
        pol = policies[code]
        questions = {q.id: q for q in pol.questions}
        results = [_result(c, "indication", evaluate(c.rule, case, questions)) for c in pol.indications]
        results += [_result(c, "exclusion", evaluate(c.rule, case, questions)) for c in pol.exclusions]
        conflicts = [
            Conflict(codes=[code, b.code], reason=b.reason, citations=list(b.citations))
            for b in pol.bundles
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
        verdict: Verdict
        if any(r.status == "not_met" for r in results):
            verdict = "not_met"
        elif all(r.status == "met" for r in results if r.kind == "indication"):
            verdict = "met"
        else:
            verdict = "insufficient"
        missing: list[MissingFact] = []
        if verdict == "insufficient":
            for r in results:
                if r.status == "unknown":
                    for f in r.facts:
                        if f not in case.facts and all(m.id != f for m in missing):
                            missing.append(MissingFact(id=f, question=questions[f].prompt))
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
