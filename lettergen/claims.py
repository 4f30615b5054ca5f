"""Claims: every factual sentence a letter may make, each bound to findings or chart facts.

This module turns a decision into the material the templates lay out. It writes no prose of its
own beyond joining data: criterion texts and finding statements come from the knowledge base,
chart facts from the case. Templates own the connective wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict

from lettergen.case import Case, Fact
from lettergen.criteria import CriterionResult, Decision, ServiceDecision
from lettergen.kb import KnowledgeBase
from lettergen.policies import CitedText, Policy


class Claim(BaseModel):
    """A sentence that asserts something, with what it rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    citations: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


def fact_value_text(fact: Fact) -> str:
    v = fact.value
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}" + (f" {fact.unit}" if fact.unit else "")
    if isinstance(v, int):
        return str(v) + (f" {fact.unit}" if fact.unit else "")
    if isinstance(v, date):
        return v.isoformat()
    return v.replace("_", " ")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "?", "!")) else text + "."


def fact_claim(case: Case, kb: KnowledgeBase, fid: str, prefix: str) -> Claim:
    """A chart fact as a sentence: its evidence, with the source and date it came from."""
    fact = case.facts[fid]
    q = kb.questions.get(fid)
    body = fact.evidence or f"{q.prompt if q else fid} {fact_value_text(fact).capitalize()}"
    origin = ", ".join(x for x in (fact.source, fact.date.isoformat() if fact.date else None) if x)
    text = _sentence(body)
    if origin:
        text = text[:-1] + f" ({origin})."
    return Claim(id=f"{prefix}.{fid}", text=text, facts=(fid,))


def finding_claim(kb: KnowledgeBase, cid: str, prefix: str) -> Claim:
    # A claim is frozen and built from the knowledge base alone, so each letter shares the first one built.
    return kb.remember(("finding", cid, prefix), _finding_claim, kb, cid, prefix)


def _finding_claim(kb: KnowledgeBase, cid: str, prefix: str) -> Claim:
    statement = kb.finding(cid)[1].statement
    return Claim(id=f"{prefix}.{cid}", text=_sentence(statement), citations=(cid,))


def cited_text_claim(item: CitedText, cid: str) -> Claim:
    return Claim(id=cid, text=_sentence(item.text), citations=item.citations)


@dataclass
class CriterionView:
    result: CriterionResult
    number: int
    evidence: list[Claim]
    support: list[Claim]


@dataclass
class ServiceView:
    decision: ServiceDecision
    policy: Policy
    site: str | None
    units: int
    criteria: list[CriterionView]
    verdict_claim: Claim
    memo_changes: list[Claim] = field(default_factory=list)
    memo_pitfalls: list[Claim] = field(default_factory=list)
    memo_outcomes: list[Claim] = field(default_factory=list)
    conflicts: list[Claim] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.decision.code

    @property
    def label(self) -> str:
        return self.decision.label

    @property
    def verdict(self) -> str:
        return self.decision.verdict


@dataclass
class Material:
    """Everything a letter template needs, built once per case."""

    case: Case
    decision: Decision
    letter_date: date
    services: list[ServiceView]
    history: list[Claim]

    def with_verdict(self, verdict: str) -> list[ServiceView]:
        return [s for s in self.services if s.verdict == verdict]

    @property
    def met(self) -> list[ServiceView]:
        return self.with_verdict("met")

    @property
    def insufficient(self) -> list[ServiceView]:
        return self.with_verdict("insufficient")

    @property
    def not_met(self) -> list[ServiceView]:
        return self.with_verdict("not_met")


def _verdict_claim(sd: ServiceDecision, pol: Policy, documented: set[str]) -> Claim:
    # Cite what the verdict rests on: every criterion when met, the failing or open ones otherwise.
    basis = {"met": ("met",), "not_met": ("not_met",), "insufficient": ("unknown",)}[sd.verdict]
    relevant = [r for r in sd.criteria if r.status in basis]
    cites = tuple(dict.fromkeys(c for r in relevant for c in r.citations))
    facts = tuple(dict.fromkeys(f for r in relevant for f in r.facts if f in documented))
    if sd.verdict == "met":
        text = f"{sd.code} meets every indication criterion of the policy '{pol.title}', and no exclusion applies."
    elif sd.verdict == "not_met":
        failed = [r for r in sd.criteria if r.status == "not_met"]
        which = "the criterion it fails is" if len(failed) == 1 else "the criteria it fails are"
        text = f"{sd.code} does not meet the policy '{pol.title}'; {which}: " + "; ".join(
            r.text.rstrip(".") for r in failed
        )
        text += "."
    else:
        text = (
            f"{sd.code} cannot be decided under the policy '{pol.title}' until the record answers "
            "the questions listed for it below."
        )
    return Claim(id=f"verdict.{sd.code}", text=text, citations=cites, facts=facts)


def _memo_claims(kb: KnowledgeBase, pol: Policy, code: str) -> dict[str, tuple[Claim, ...]]:
    """A policy's determination-memo notes as claims, built once per knowledge base (see finding_claim)."""
    return kb.remember(("memo", pol.id, code), _build_memo_claims, pol, code)


def _build_memo_claims(pol: Policy, code: str) -> dict[str, tuple[Claim, ...]]:
    memo = pol.memo
    assert memo is not None
    return {
        part: tuple(cited_text_claim(t, f"memo.{code}.{part}.{j}") for j, t in enumerate(getattr(memo, part), 1))
        for part in ("changes", "pitfalls", "outcomes")
    }


def build_material(case: Case, decision: Decision, kb: KnowledgeBase, letter_date: date) -> Material:
    views: list[ServiceView] = []
    for sd in decision.services:
        pol = kb.policy_for(sd.code, case.payer.policy)
        assert pol is not None  # decide() already resolved every code
        svc = next(s for s in case.services if s.code == sd.code)
        crit_views: list[CriterionView] = []
        for i, r in enumerate(sd.criteria, start=1):
            prefix = f"rationale.{sd.code}.{r.id}"
            evidence = [fact_claim(case, kb, f, prefix + ".fact") for f in r.facts if f in case.facts]
            support = [finding_claim(kb, c, prefix) for c in r.citations]
            crit_views.append(CriterionView(result=r, number=i, evidence=evidence, support=support))
        view = ServiceView(
            decision=sd,
            policy=pol,
            site=svc.site,
            units=svc.units,
            criteria=crit_views,
            verdict_claim=_verdict_claim(sd, pol, set(case.facts)),
            conflicts=[
                Claim(id=f"conflict.{sd.code}.{i}", text=_sentence(c.reason), citations=tuple(c.citations))
                for i, c in enumerate(sd.conflicts, start=1)
            ],
        )
        if pol.memo:
            for part, claims in _memo_claims(kb, pol, sd.code).items():
                setattr(view, f"memo_{part}", list(claims))
        views.append(view)
    ordered = sorted(case.facts, key=lambda f: (case.facts[f].date or date.min, f))
    history = [fact_claim(case, kb, f, "history") for f in ordered]
    return Material(case=case, decision=decision, letter_date=letter_date, services=views, history=history)
