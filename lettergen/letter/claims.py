"""Claims: every factual sentence a letter may make, each bound to findings or chart facts.

This module turns a decision into the material the templates lay out. It writes no prose of its
own beyond joining data: criterion texts and finding statements come from the knowledge base,
chart facts from the case. Templates own the connective wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict

from lettergen.case.model import Case, Fact
from lettergen.decision.engine import CriterionResult, Decision, Facts, ServiceDecision, case_facts, evaluate
from lettergen.knowledge.policies import CitedText, Policy
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.layout import long_date, numeric_date


class Claim(BaseModel):
    """A sentence that asserts something, with what it rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    citations: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


def code_word(code: str) -> str:
    """A service code as a letter first names it: "CPT 20206", or "HCPCS G0288" for a Level II code."""
    return f"HCPCS {code}" if code[:1].isalpha() else f"CPT {code}"


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
    fact = case.chart_fact(fid)
    assert fact is not None
    q = kb.questions.get(fid)
    body = fact.evidence or f"{q.prompt if q else fid} {fact_value_text(fact).capitalize()}"
    return _chart_claim(f"{prefix}.{fid}", body, fact, fid)


def _chart_claim(cid: str, body: str, fact: Fact, fid: str) -> Claim:
    origin = ", ".join(x for x in (fact.source, long_date(fact.date) if fact.date else None) if x)
    text = _sentence(body)
    if origin:
        text = text[:-1] + f" ({origin})."
    return Claim(id=cid, text=text, facts=(fid,))


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

    @property
    def statement(self) -> str:
        """What the letter says of the criterion: an exclusion the record rules out is said in plain words
        ("The patient has no distant metastases."), never as the negated condition."""
        r = self.result
        if r.kind == "exclusion":
            if r.status == "met" and r.ruled_out:
                return r.ruled_out
            if r.status == "unknown":
                return "Not yet ruled out: " + r.text[0].lower() + r.text[1:]
        return r.text


@dataclass
class ServiceView:
    decision: ServiceDecision
    policy: Policy | None  # None: no criteria on file (verdict not_assessed)
    site: str | None
    units: int
    date_of_service: str | None  # as the header writes it (letter.date_style)
    criteria: list[CriterionView]
    verdict_claim: Claim | None  # None only for a code with no criteria and no documented rationale
    # Guideline points that never gate: those the record documents, and those it does not (for the office).
    considerations: list[CriterionView] = field(default_factory=list)
    open_considerations: list[CriterionView] = field(default_factory=list)
    memo_changes: list[Claim] = field(default_factory=list)
    memo_pitfalls: list[Claim] = field(default_factory=list)
    memo_outcomes: list[Claim] = field(default_factory=list)
    conflicts: list[Claim] = field(default_factory=list)
    # A code with no criteria on file: the clinician's documented rationale, one chart-fact claim per entry.
    grounds: list[Claim] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.decision.code

    @property
    def label(self) -> str:
        """The criteria's plain-language label, or for a code with no criteria the clinician's ("" if none)."""
        return self.decision.label or ""

    @property
    def named(self) -> str:
        """The code as a heading names it: "CPT 27447: Total knee replacement", or "CPT 27447" without a label."""
        return f"{self.code_word}: {self.label}" if self.label else self.code_word

    @property
    def verdict(self) -> str:
        return self.decision.verdict

    @property
    def code_word(self) -> str:
        return code_word(self.decision.code)


@dataclass
class Material:
    """Everything a letter template needs, built once per case."""

    case: Case
    decision: Decision
    letter_date: date
    services: list[ServiceView]
    history: list[Claim]

    def history_for(self, views: list[ServiceView]) -> list[Claim]:
        """Chart facts the letter states outside the criteria of ``views`` (each fact is said once)."""
        shown = {c.facts[0] for v in views for cv in v.criteria + v.considerations for c in cv.evidence}
        return [c for c in self.history if c.facts[0] not in shown]

    def with_verdict(self, verdict: str) -> list[ServiceView]:
        return [s for s in self.services if s.verdict == verdict]

    @property
    def not_assessed(self) -> list[ServiceView]:
        """Codes with no criteria on file."""
        return self.with_verdict("not_assessed")

    @property
    def grounded(self) -> list[ServiceView]:
        """Codes with no criteria on file whose documented rationale a payer letter can rest on."""
        return [s for s in self.not_assessed if s.grounds]

    @property
    def requested(self) -> list[ServiceView]:
        """What a payer letter requests or appeals, in the case's order: the codes that meet their criteria, and
        the codes with no criteria on file that carry the clinician's documented rationale."""
        return [s for s in self.services if s.verdict == "met" or (s.verdict == "not_assessed" and s.grounds)]

    @property
    def met(self) -> list[ServiceView]:
        return self.with_verdict("met")

    @property
    def insufficient(self) -> list[ServiceView]:
        return self.with_verdict("insufficient")

    @property
    def not_met(self) -> list[ServiceView]:
        return self.with_verdict("not_met")


COVERAGE_TIERS = ("regulation", "payer_policy")


def _verdict_claim(
    sd: ServiceDecision, pol: Policy | None, documented: set[str], cited: dict[str, list[str]], kb: KnowledgeBase
) -> Claim | None:
    # Cite what the verdict rests on: every coverage criterion when met, the failing or open ones otherwise;
    # ``cited`` holds the findings this case may cite for each criterion (see evidence_order). A code with no
    # criteria on file rests on the clinician's rationale, and the sentence names no policy; with no rationale
    # there is nothing to rest a sentence on (None).
    name = code_word(sd.code)
    if sd.verdict == "not_assessed":
        if not sd.rationale:
            return None
        text = f"The case for {name} rests on the clinical findings documented in the record, set out below."
        return Claim(id=f"verdict.{sd.code}", text=text, facts=tuple(r.id for r in sd.rationale))
    basis = {"met": ("met",), "not_met": ("not_met",), "insufficient": ("unknown",)}[sd.verdict]
    relevant = [r for r in sd.criteria if r.status in basis and r.kind != "consideration"]
    cites = tuple(dict.fromkeys(c for r in relevant for c in cited.get(r.id, [])))
    facts = tuple(dict.fromkeys(f for r in relevant for f in r.facts if f in documented))
    if pol is None:
        # No criteria of its own, and bundled into another requested code by that code's criteria (not_met).
        failed = [r for r in sd.criteria if r.status == "not_met"]
        text = f"{name} is not supported on this record: " + "; ".join(r.text.rstrip(".") for r in failed) + "."
        return Claim(id=f"verdict.{sd.code}", text=text, citations=cites, facts=facts)
    if sd.verdict == "met":
        exclusions = [r for r in sd.criteria if r.kind == "exclusion"]
        # "Coverage criterion" only where the letter quotes a payer policy or a regulation for this plan: criteria
        # that rest, for this patient's plan, on guidelines and studies alone are lettergen's, not the payer's.
        coverage = any((hit := kb.citations.get(c)) is not None and hit[0].tier in COVERAGE_TIERS for c in cites)
        text = f"{name} meets each {'coverage criterion' if coverage else 'criterion'} set out below"
        text += ", and the record rules out each exclusion." if exclusions else "."
    elif sd.verdict == "not_met":
        failed = [r for r in sd.criteria if r.status == "not_met"]
        which = "the criterion it fails is" if len(failed) == 1 else "the criteria it fails are"
        text = f"{name} does not meet the policy '{pol.title}'; {which}: " + "; ".join(
            r.text.rstrip(".") for r in failed
        )
        text += "."
    else:
        text = (
            f"{name} cannot be decided under the policy '{pol.title}' until the record answers "
            "the questions listed for it."
        )
    return Claim(id=f"verdict.{sd.code}", text=text, citations=cites, facts=facts)


# Evidence order for a criterion: a finding about the patient's own disease first, then the payer's policy
# or a regulation, then a general guideline, then a study or review, then a secondary source.
_TIER_RANK = {"regulation": 1, "payer_policy": 1, "guideline": 2, "peer_reviewed": 3, "secondary": 4}


def evidence_order(kb: KnowledgeBase, facts: Facts, citations: tuple[str, ...], plan_type: str) -> list[str]:
    """The findings a letter cites for a criterion, most specific first; a finding limited to populations the
    case is not in (an osteoid-osteoma finding for a metastasis), or to other kinds of plan (a Medicare statute
    in a letter to a commercial plan), is left out."""
    ranked: list[tuple[int, int, str]] = []
    for i, cid in enumerate(dict.fromkeys(citations)):
        src, finding = kb.finding(cid)
        if finding.plans and plan_type not in finding.plans:
            continue
        if finding.populations:
            rules = [kb.vocabulary.populations[p] for p in finding.populations]
            if not any(evaluate(r, facts) is True for r in rules):
                continue
            ranked.append((0, i, cid))
        else:
            ranked.append((_TIER_RANK[src.tier], i, cid))
    return [cid for _, _, cid in sorted(ranked)]


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
    facts = case_facts(case, kb, letter_date)
    said: set[str] = set()  # findings, facts and conflicts already stated: no sentence is printed twice in a letter
    order = {"met": 0, "not_assessed": 1, "insufficient": 2, "not_met": 3}
    built: dict[str, ServiceView] = {}
    for sd in sorted(decision.services, key=lambda s: order[s.verdict]):
        pol = kb.policy_for(sd.code, case.payer.policy)
        assert pol is not None or sd.policy is None  # decide() resolved every code that has criteria
        svc = next(s for s in case.services if s.code == sd.code)
        crit_views: list[CriterionView] = []
        considered: list[CriterionView] = []
        open_points: list[CriterionView] = []
        allowed: dict[str, list[str]] = {}
        for r in sd.criteria:
            allowed[r.id] = evidence_order(kb, facts, r.citations, case.payer.plan_type)
            prefix = f"rationale.{sd.code}.{r.id}"
            shown = r.kind != "consideration" or r.status == "met"
            evidence: list[Claim] = []
            support: list[Claim] = []
            if shown:
                for f in r.facts:
                    if f in case.facts and f not in said:
                        said.add(f)
                        evidence.append(fact_claim(case, kb, f, prefix + ".fact"))
                for c in allowed[r.id]:
                    if c not in said:
                        said.add(c)
                        support.append(finding_claim(kb, c, prefix))
            if r.kind != "consideration":
                crit_views.append(
                    CriterionView(result=r, number=len(crit_views) + 1, evidence=evidence, support=support)
                )
            elif shown:
                considered.append(
                    CriterionView(result=r, number=len(considered) + 1, evidence=evidence, support=support)
                )
            else:
                open_points.append(CriterionView(result=r, number=len(open_points) + 1, evidence=[], support=[]))
        conflicts: list[Claim] = []  # a conflict between two requested codes is said once, under the first built
        for i, conflict in enumerate(sd.conflicts, start=1):
            pair = "+".join(conflict.codes)
            if pair not in said:
                said.add(pair)
                text, cites = _sentence(conflict.reason), tuple(conflict.citations)
                conflicts.append(Claim(id=f"conflict.{sd.code}.{i}", text=text, citations=cites))
        view = ServiceView(
            decision=sd,
            policy=pol,
            site=svc.site,
            units=svc.units,
            date_of_service=numeric_date(svc.date_of_service, case.letter.date_style) if svc.date_of_service else None,
            criteria=crit_views,
            verdict_claim=_verdict_claim(sd, pol, set(case.facts), allowed, kb),
            considerations=considered,
            open_considerations=open_points,
            conflicts=conflicts,
            grounds=[grounds_claim(case, sd.code, r.id) for r in sd.rationale],
        )
        if pol is not None and pol.memo:
            for part, claims in _memo_claims(kb, pol, sd.code).items():
                setattr(view, f"memo_{part}", list(claims))
        built[sd.code] = view
    views = [built[sd.code] for sd in decision.services]
    # The clinical history: the case's facts, and the rationale entries of codes that are not argued on them
    # (a code whose criteria decide it); a code with no criteria on file states its own under its heading.
    argued_on_rationale = {r.id for sd in decision.services for r in sd.rationale}
    rationale = [
        fid for sd in decision.services for fid in case.rationale_facts(sd.code) if fid not in argued_on_rationale
    ]
    dated = {f: case.facts[f].date for f in case.facts}
    dated.update((f, _rationale_date(case, f)) for f in rationale)
    ordered = sorted(dated, key=lambda f: (dated[f] or date.min, f))
    history = [fact_claim(case, kb, f, "history") for f in ordered]
    return Material(case=case, decision=decision, letter_date=letter_date, services=views, history=history)


def _rationale_date(case: Case, fid: str) -> date | None:
    fact = case.chart_fact(fid)
    return fact.date if fact is not None else None


def grounds_claim(case: Case, code: str, fid: str) -> Claim:
    """One entry of the clinician's documented rationale for a code with no criteria on file, as the letter
    states it (``grounds.<code>.<n>``): the statement, with the record and date it is documented in, citing
    itself as a chart fact."""
    fact = case.chart_fact(fid)
    assert fact is not None and isinstance(fact.value, str)
    return _chart_claim(f"grounds.{code}.{fid.rpartition('.')[2]}", fact.value, fact, fid)
