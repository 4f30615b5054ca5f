"""Plain-text views of decisions, criteria, citations and code cards for the terminal.

Each function returns a string; the CLI prints it. ``--json`` output uses the pydantic models instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lettergen.decision.engine import Decision
from lettergen.knowledge.citations import Source
from lettergen.knowledge.policies import AllOf, AnyOf, CitedText, DiagnosisTest, FactTest, NotOf, Policy, Rule
from lettergen.knowledge.store import KnowledgeBase

if TYPE_CHECKING:
    from lettergen.decision.ncci import NcciReport

_MARK = {"met": "+", "not_met": "x", "unknown": "?"}


def decision_text(decision: Decision, ncci: NcciReport | None = None) -> str:
    """The decision for the terminal; with ``ncci``, the NCCI edits of the imported CMS tables after it."""
    lines = [f"case {decision.case_id}"]
    for s in decision.services:
        label = s.label or "(no label given)"
        lines.append(f"  {s.code:<6} {s.verdict:<13} {label}  [{s.policy or 'no criteria on file'}]")
        for r in s.rationale:
            lines.append(f"      = rationale {r.id} ({r.source}, {r.date.isoformat()}): {r.statement}")
        if s.verdict == "not_assessed" and not s.rationale:
            lines.append(
                "      no rationale: nothing to request it on; add the clinician's documented rationale "
                "(services[].rationale: statement, source, date), or criteria for the code"
            )
        for c in s.criteria:
            lines.append(f"      {_MARK[c.status]} {c.kind:<10} {c.id}: {c.text}")
        for conf in s.conflicts:
            lines.append(f"      ! conflict {' + '.join(conf.codes)}: {conf.reason}")
        for m in s.missing_facts:
            lines.append(f"      missing {m.id}: {m.question}")
    if decision.deadline:
        d = decision.deadline
        due = d.due.isoformat() if d.due else "not computable"
        lines.append(f"  deadline {d.kind}: {due} ({d.basis})")
        lines += [f"    note: {n}" for n in d.notes]
    if ncci is not None:
        from lettergen.decision.ncci import report_lines

        lines.append("  ncci (CMS tables imported by the office; for the office, never the payer letter):")
        lines += [f"    {line}" for line in report_lines(ncci)]
    return "\n".join(lines)


def rule_text(rule: Rule, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(rule, FactTest):
        return [pad + rule.describe()]
    if isinstance(rule, DiagnosisTest):
        return [pad + "diagnosis starts with " + " or ".join(rule.dx)]
    if isinstance(rule, NotOf):
        return [pad + "not:", *rule_text(rule.not_, indent + 1)]
    items = rule.all if isinstance(rule, AllOf) else rule.any
    head = "all of:" if isinstance(rule, AllOf) else "any of:"
    assert isinstance(rule, AllOf | AnyOf)
    out = [pad + head]
    for r in items:
        out += rule_text(r, indent + 1)
    return out


def _cites(kb: KnowledgeBase, ids: tuple[str, ...] | list[str], pad: str) -> list[str]:
    out = []
    for cid in ids:
        if kb.has_citation(cid):
            src, f = kb.finding(cid)
            out.append(f"{pad}[{cid}] {f.statement} ({f.locator or 'no locator'}; {_ident(src)})")
        else:
            out.append(f"{pad}[{cid}] MISSING FROM THE STORE")
    return out


def _ident(src: Source) -> str:
    bits = [f"doi:{src.doi}" if src.doi else "", f"PMID {src.pmid}" if src.pmid else "", src.url or ""]
    return ", ".join(b for b in bits if b)


def policy_text(pol: Policy, kb: KnowledgeBase) -> str:
    lines = [
        f"{pol.title}",
        f"  policy {pol.ref} (set {pol.set}{', payer ' + pol.payer if pol.payer else ''})",
    ]
    lines.append(f"  effective {pol.effective}" + (f", review by {pol.review_by}" if pol.review_by else ""))
    lines += [f"  {c.code}: {c.label}" for c in pol.codes]
    lines.append("")
    lines.append("Questions")
    for q in pol.questions:
        extra = f" [{q.type}{', ' + q.unit if q.unit else ''}{': ' + ' | '.join(q.choices) if q.choices else ''}]"
        lines.append(f"  {q.id}: {q.prompt}{extra}")
    for group, items in (
        ("Indications (all must hold)", pol.indications),
        ("Exclusions (any one denies)", pol.exclusions),
    ):
        if not items:
            continue
        lines += ["", group]
        for c in items:
            lines.append(f"  {c.id}: {c.text}")
            lines += rule_text(c.rule, 3)
            lines += _cites(kb, c.citations, "      ")
    if pol.bundles:
        lines += ["", "Bundled codes (not reported separately)"]
        for b in pol.bundles:
            lines.append(f"  {b.code}: {b.reason}")
            lines += _cites(kb, b.citations, "      ")
    lines += ["", "Documentation checklist"] + [f"  - {item}" for item in pol.checklist]
    return "\n".join(lines)


def _cited(kb: KnowledgeBase, items: tuple[CitedText, ...], title: str) -> list[str]:
    if not items:
        return []
    out = ["", title]
    for t in items:
        out.append(f"  - {t.text}")
        out += _cites(kb, t.citations, "      ")
    return out


def card_text(code: str, pol: Policy, kb: KnowledgeBase) -> str:
    lines = [f"{code}: {pol.label(code)}", f"  family {pol.family}; criteria {pol.ref}"]
    card = pol.card
    if card:
        lines += ["", "What it covers", f"  {card.covers.text}", *_cites(kb, card.covers.citations, "      ")]
        lines += _cited(kb, card.qualifying, "Qualifying circumstances")
        lines += _cited(kb, card.not_for, "When not to use it")
        lines += _cited(kb, card.notes, "Notes (where sources disagree, the cited policy wins)")
    if pol.bundles:
        lines += ["", "Bundled codes"] + [f"  {b.code}: {b.reason}" for b in pol.bundles]
    lines += ["", "Documentation checklist"] + [f"  - {item}" for item in pol.checklist]
    if card and card.terminology:
        lines += ["", "Terminology"] + [f"  {t.term}: {t.definition}" for t in card.terminology]
    if card:
        lines += _cited(kb, card.examples, "Typical clinical examples")
    others = [p for p in kb.policies.values() if p.set != "default" and any(c.code == code for c in p.codes)]
    if others:
        lines += ["", "Payer policies on file"] + [f"  {p.set}: {p.title} ({p.payer or 'payer'})" for p in others]
    return "\n".join(lines)


def source_text(src: Source) -> str:
    lines = [
        src.reference(),
        f"  id {src.id}; type {src.type}; accessed {src.accessed}; license: {src.license}",
    ]
    for f in src.findings:
        lines.append(f"  {src.id}.{f.id}: {f.statement}")
        lines.append(f"      locator: {f.locator or 'none'}; figures: {', '.join(f.figures) or 'none'}")
    return "\n".join(lines)
