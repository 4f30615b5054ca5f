"""Appeal material: the claims an appeal, external review request or peer-to-peer script makes about a denial.

Like :mod:`lettergen.letter.claims`, this module writes no clinical prose: the rebuttal is assembled from the knowledge
base (criteria, findings, code cards, bundling rules, checklists) and the case's chart facts, chosen by the
denial's category. The deadline sentence cites the regulation findings its rule rests on.

Only codes whose verdict is ``met`` are appealed on their criteria, and codes with no criteria on file
(``not_assessed``) on the clinician's documented rationale when the case carries one. Codes still
``insufficient`` (or not assessed with no rationale) are listed with what they need; codes ``not_met`` are named
with the reason no appeal is drafted for them. When no denied code can be appealed there is nothing honest to
appeal, and :func:`build_appeal` raises :class:`NothingToAppeal` (exit 4) instead of drafting.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lettergen.case import denials
from lettergen.case.model import Case, Denial
from lettergen.decision.deadlines import deadline_words
from lettergen.decision.engine import Deadline
from lettergen.errors import InputError, NothingToAppeal
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.claims import Claim, CriterionView, Material, ServiceView, cited_text_claim, finding_claim
from lettergen.letter.layout import long_date

APPEAL_TYPES: tuple[str, ...] = ("appeal", "external_review", "peer_to_peer")
# The letters a patient may send in their own voice (their templates read ``voice``); the others are the
# physician's (a peer-to-peer is a physician's call, a letter of medical necessity the physician's letter).
PATIENT_VOICE_TYPES: tuple[str, ...] = ("appeal", "external_review")
# Source types whose findings state what the standard of care is.
STANDARD_OF_CARE_TYPES = ("guideline", "consensus", "coverage_determination", "payer_policy")


@dataclass
class AppealView:
    denial: Denial
    category: str
    category_basis: str
    codes: list[denials.CodeInfo]
    deadline: Deadline
    deadline_claim: Claim | None
    appealed: list[ServiceView]
    pending: list[ServiceView]
    withdrawn: list[ServiceView]
    standard_of_care: list[Claim] = field(default_factory=list)
    card: list[Claim] = field(default_factory=list)
    bundling: list[Claim] = field(default_factory=list)
    unappealable: list[str] = field(default_factory=list)

    @property
    def plan_policies(self) -> list[ServiceView]:
        """Appealed codes decided under the payer's own policy (payer.policy overlay)."""
        return [v for v in self.appealed if v.policy is not None and v.policy.set != "default"]

    @property
    def deadline_words(self) -> str:
        return deadline_words(self.deadline.kind)


def deadline_claim(deadline: Deadline) -> Claim | None:
    """The deadline as a cited sentence: the rule, the last day, and the date it was counted from."""
    if not deadline.citations:
        return None
    text = deadline.basis
    if deadline.due is not None and deadline.computed_from is not None:
        text += f" Counted from {long_date(deadline.computed_from)}, the last day to file is {long_date(deadline.due)}."
    if deadline.decision_within:
        text += f" On the expedited path the decision is due within {deadline.decision_within}."
    return Claim(id="deadline.due", text=text, citations=tuple(deadline.citations))


def _standard_of_care(views: list[ServiceView], kb: KnowledgeBase) -> tuple[list[Claim], list[ServiceView]]:
    """The findings that state the standard of care, taken out of the criteria they support: the rebuttal of an
    experimental-or-investigational denial says each once, up front. They are the criteria's own evidence, so
    the same population and plan filter applies (lettergen.letter.claims.evidence_order)."""
    out: list[Claim] = []

    def standard(c: Claim) -> bool:
        return kb.finding(c.citations[0])[0].type in STANDARD_OF_CARE_TYPES

    def rest(code: str, cv: CriterionView) -> CriterionView:
        out.extend(finding_claim(kb, c.citations[0], f"soc.{code}") for c in cv.support if standard(c))
        return replace(cv, support=[c for c in cv.support if not standard(c)])

    return out, [replace(v, criteria=[rest(v.code, cv) for cv in v.criteria]) for v in views]


def _card(views: list[ServiceView]) -> tuple[list[Claim], list[Claim]]:
    card: list[Claim] = []
    bundling: list[Claim] = []
    for v in views:
        if v.policy is None:  # no criteria on file: no code card, no bundling rules
            continue
        c = v.policy.card
        if c is not None:
            card.append(cited_text_claim(c.covers, f"card.{v.code}.covers"))
            card += [cited_text_claim(t, f"card.{v.code}.not_for.{i}") for i, t in enumerate(c.not_for, start=1)]
        bundling += [
            Claim(id=f"bundling.{v.code}.{b.code}", text=b.reason.rstrip(".") + ".", citations=b.citations)
            for b in v.policy.bundles
        ]
    return card, bundling


def build_appeal(
    case: Case, material: Material, kb: KnowledgeBase, deadline: Deadline, *, letter_type: str = "appeal"
) -> AppealView:
    denial = case.denial
    if denial is None:
        raise InputError("the case has no denial block to answer")
    appealed, withdrawn = material.requested, material.not_met
    pending = [
        v for v in material.services if v.verdict == "insufficient" or (v.verdict == "not_assessed" and not v.grounds)
    ]
    # Talking points for a peer-to-peer call are the physician's own: they still help when nothing is met.
    if not appealed and letter_type != "peer_to_peer":
        why = ", ".join(f"{v.code}: {v.verdict}" for v in material.services)
        ungrounded = [v.code for v in material.not_assessed if not v.grounds]
        add = (
            f"; {', '.join(ungrounded)} {'has' if len(ungrounded) == 1 else 'have'} no criteria on file and no "
            "documented rationale: add the clinician's rationale (services[].rationale: statement, source, date)"
            if ungrounded
            else ""
        )
        raise NothingToAppeal(
            f"no appeal drafted: no denied code meets its criteria ({why}){add}; the record does not support an "
            "appeal. See 'lettergen check' for the criteria that fail, or draft --type determination for the "
            "internal memo"
        )
    category, basis = denials.classify(denial.reason, denial.codes, denial.category)
    standard_of_care: list[Claim] = []
    if category == "experimental_investigational":
        standard_of_care, appealed = _standard_of_care(appealed, kb)
    card, bundling = _card(appealed)
    return AppealView(
        denial=denial,
        category=category,
        category_basis=basis,
        codes=[info for c in denial.codes if (info := denials.lookup(c)) is not None],
        deadline=deadline,
        deadline_claim=deadline_claim(deadline),
        appealed=appealed,
        pending=pending,
        withdrawn=withdrawn,
        standard_of_care=standard_of_care,
        card=card,
        bundling=bundling,
        unappealable=denials.unappealable(denial.codes),
    )
