"""Case skeletons: every question the named codes need, ready to fill in (cf. Da Vinci DTR)."""

from __future__ import annotations

import json

from lettergen.case.codes import normalize_service_code, service_code_problem
from lettergen.errors import UsageError
from lettergen.knowledge.policies import Policy, Question
from lettergen.knowledge.store import KnowledgeBase, load_kb


def _policies(codes: list[str], kb: KnowledgeBase) -> list[tuple[str, Policy | None]]:
    """Each code with its criteria, or None for a code with no criteria on file (its case states a label and
    the clinician's documented rationale instead)."""
    out: list[tuple[str, Policy | None]] = []
    for raw in codes:
        code = normalize_service_code(raw)
        problem = service_code_problem(code)
        if problem:
            raise UsageError(f"--code: {problem}")
        out.append((code, kb.policy_for(code)))
    return out


def _questions(pairs: list[tuple[str, Policy | None]]) -> list[Question]:
    seen: dict[str, Question] = {}
    for _, pol in pairs:
        for q in pol.questions if pol is not None else ():
            seen.setdefault(q.id, q)
    return list(seen.values())


def _answer_hint(q: Question) -> str:
    if q.type == "bool":
        return "true or false"
    if q.type == "number":
        return f"a number {q.range_text()}" if q.min is not None else f"a number{' in ' + q.unit if q.unit else ''}"
    if q.type == "choice":
        return "one of: " + ", ".join(q.choices)
    if q.type == "date":
        return "a date, YYYY-MM-DD"
    return "text"


def skeleton_yaml(codes: list[str], kb: KnowledgeBase | None = None) -> str:
    kb = kb or load_kb()
    pairs = _policies(codes, kb)
    lines = [
        "# lettergen case file (contract v1). Fill in every field; see examples/ for complete cases.",
        "# Facts: uncomment each one the chart documents. A fact left out is 'unknown', which is not 'false'.",
        "case_id: new-case-001",
        "letter: {type: lmn}",
        "patient: {name: '', birth_date: YYYY-MM-DD, sex: female, member_id: ''}",
        "payer: {name: '', plan_type: commercial, state: null, policy: null, address: ''}",
        "provider: {name: '', credentials: MD, specialty: '', npi: '', organization: '', address: '', phone: ''}",
        "diagnoses:",
        "  - {code: '', description: ''}   # billable ICD-10-CM code",
        "services:",
    ]
    for code, pol in pairs:
        if pol is not None:
            lines.append(f"  - {{code: '{code}', site: '', units: 1}}   # {pol.label(code)}")
            continue
        lines += [
            f"  # {code}: no criteria on file. The letter rests on the clinician's documented rationale alone and",
            "  # names no policy: state findings (imaging, examination, treatments tried and their results), not",
            "  # conclusions; attach the payer's own policy for the code if it publishes one.",
            f"  - code: '{code}'",
            "    label: ''   # the service in the clinician's words",
            "    site: ''",
            "    units: 1",
            "    rationale:",
            "      - {statement: '', source: '', date: YYYY-MM-DD}",
        ]
    lines.append("facts:")
    for q in _questions(pairs):
        lines.append(f"  # {q.prompt} ({_answer_hint(q)})")
        if q.help:
            lines.append(f"  #   {q.help}")
        lines.append(f"  # {q.id}: {{value: , evidence: '', source: '', date: YYYY-MM-DD}}")
    lines.append("enclosures: []")
    return "\n".join(lines) + "\n"


def questionnaire_json(codes: list[str], kb: KnowledgeBase | None = None) -> str:
    from lettergen.outputs.fhir_out import questionnaire

    kb = kb or load_kb()
    pairs = _policies(codes, kb)
    return json.dumps(questionnaire([c for c, _ in pairs], _questions(pairs)), indent=2) + "\n"
