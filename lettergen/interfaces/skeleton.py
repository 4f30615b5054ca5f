"""Case skeletons (``lettergen init``): every field of a case and every question the named codes need, ready
to fill in (cf. Da Vinci DTR).

A skeleton is a valid YAML file whose placeholders are comments: a field waiting for its value is a key with
nothing after it (``name:``), and the comment beside it says what it takes (required or optional, the form,
every allowed value of a field with a fixed set). ``lettergen check`` on a skeleton not yet filled in lists
every empty required field at once. Facts are commented out, one block per question with its type, unit and
range: a fact left out is unknown, which is not false.
"""

from __future__ import annotations

import json
import re
import secrets
import textwrap
from datetime import date
from typing import Any, Literal, get_args, get_origin

from lettergen.case import denials
from lettergen.case.codes import normalize_service_code, service_code_problem
from lettergen.case.model import CASE_ID, Denial, LetterSpec, Patient, Payer, Service
from lettergen.errors import UsageError
from lettergen.knowledge.policies import AGE, Policy, Question
from lettergen.knowledge.store import KnowledgeBase, load_kb

# The random part of a new case id: lower-case letters and digits that cannot be misread for one another.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_case_id(today: date | None = None) -> str:
    """A case id for a new case: the date and a short random suffix (``2026-11-21-k3f9qz``), so that two
    skeletons made the same day do not share the names of their letters."""
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"{(today or date.today()).isoformat()}-{suffix}"


def check_case_id(case_id: str) -> str:
    if not re.match(CASE_ID, case_id):
        raise UsageError("--case-id: must be letters, digits, '.', '_' or '-' (1-100 characters), safe in a file name")
    return case_id


def _policies(codes: list[str], kb: KnowledgeBase, policy_set: str | None = None) -> list[tuple[str, Policy | None]]:
    """Each code with its criteria, or None for a code with no criteria on file (its case states a label and
    the clinician's documented rationale instead)."""
    out: list[tuple[str, Policy | None]] = []
    for raw in codes:
        code = normalize_service_code(raw)
        problem = service_code_problem(code)
        if problem:
            raise UsageError(f"--code: {problem}")
        out.append((code, kb.policy_for(code, policy_set)))
    return out


def _questions(pairs: list[tuple[str, Policy | None]]) -> list[Question]:
    seen: dict[str, Question] = {}
    for _, pol in pairs:
        for q in pol.questions if pol is not None else ():
            if q.id != AGE.id:  # derived from the birth date, never written
                seen.setdefault(q.id, q)
    return list(seen.values())


def overlays(codes: list[str], kb: KnowledgeBase) -> dict[str, list[str]]:
    """The payer policy sets on file for these codes: set -> the codes it covers."""
    out: dict[str, list[str]] = {}
    for raw in codes:
        code = normalize_service_code(raw)
        for policy_set in kb.policy_sets():
            if policy_set != "default" and (policy_set, code) in kb.by_code:
                out.setdefault(policy_set, []).append(code)
    return out


def check_policy_set(policy_set: str | None, codes: list[str], kb: KnowledgeBase) -> str | None:
    if policy_set is None:
        return None
    on_file = overlays(codes, kb)
    if policy_set not in on_file:
        known = ", ".join(on_file) or "none"
        raise UsageError(
            f"--payer-policy: no payer policy set of that name covers these codes (on file for them: {known})"
        )
    return policy_set


def choices(model: Any, name: str) -> tuple[str, ...]:
    """Every allowed value of an enumerated field of a case model (a Literal, perhaps optional)."""

    def values(annotation: Any) -> tuple[str, ...]:
        if get_origin(annotation) is Literal:
            return tuple(str(v) for v in get_args(annotation))
        for arg in get_args(annotation):
            found = values(arg)
            if found:
                return found
        return ()

    return values(model.model_fields[name].annotation)


def _one_of(model: Any, name: str) -> str:
    return "one of: " + ", ".join(choices(model, name))


def _answer_hint(q: Question) -> str:
    if q.type == "bool":
        return "type bool: true or false"
    if q.type == "number":
        return f"type number{', unit ' + q.unit if q.unit else ''}: a number {q.range_text()}"
    if q.type == "choice":
        return "type choice, one of: " + ", ".join(q.choices)
    if q.type == "date":
        return "type date: YYYY-MM-DD"
    return "type text"


def _field(indent: int, key: str, value: str, comment: str, width: int = 21) -> str:
    head = f"{' ' * indent}{key}:{' ' + value if value else ''}"
    return f"{head:<{width}} # {comment}"


def _wrapped(prefix: str, text: str, indent: str | None = None, width: int = 100) -> list[str]:
    """``text`` as comment lines, the first after ``prefix``, the others after ``indent``."""
    rest = indent if indent is not None else prefix + "  "
    return textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=rest)


def _denial_block() -> list[str]:
    codes = denials.known_codes()
    lines = [
        _field(0, "denial", "", "the denial this appeal answers"),
        _field(2, "date", "", "required, YYYY-MM-DD: the date of the denial"),
        _field(2, "reference", "", "required: the payer's claim or case number"),
        _field(2, "reason", "", "required: the payer's reason, as the notice gives it"),
        _field(2, "codes", "[]", "optional: the codes on the notice, e.g. [CO-50, N115]; known codes:"),
        f"  #   CARC (a group code may come first: {', '.join(denials.group_codes())}; e.g. CO-50):",
    ]
    for kind in ("CARC", "RARC"):
        if kind == "RARC":
            lines.append("  #   RARC:")
        for info in codes:
            if info.kind == kind:
                lines += _wrapped(f"  #     {info.code:<5} ", info.meaning, "  #" + " " * 11)
    lines += [
        _field(2, "level", "1", "1 to 5: 1 for a first appeal, 2 for a second"),
        _field(2, "urgent", "false", "true for an expedited (urgent) appeal"),
        _field(2, "notice_date", "", "optional, YYYY-MM-DD: the date printed on the notice, if not the same"),
        _field(2, "received", "", "optional, YYYY-MM-DD: the day the notice was received"),
        _field(2, "category", "", f"optional, {_one_of(Denial, 'category')}"),
        "  #   (when empty, the category is derived from the codes and the reason)",
    ]
    return lines


def skeleton_yaml(
    codes: list[str],
    kb: KnowledgeBase | None = None,
    *,
    appeal: bool = False,
    case_id: str | None = None,
    policy_set: str | None = None,
) -> str:
    kb = kb or load_kb()
    policy_set = check_policy_set(policy_set, codes, kb)
    pairs = _policies(codes, kb, policy_set)
    case_id = check_case_id(case_id) if case_id else new_case_id()
    on_file = overlays(codes, kb)
    sets = "; ".join(f"{s} ({', '.join(c)})" for s, c in on_file.items()) or "none on file for these codes"
    lines = [
        f"# lettergen case file (contract v1) for {', '.join(c for c, _ in pairs)}, made by `lettergen init`.",
        "# Fill in each empty value; the comment after it says what it takes. Optional ones may stay empty.",
        "# Then `lettergen check` this file (it lists every field still missing) and `lettergen draft` it.",
        _field(0, "case_id", case_id, "unique per case: letters, digits, '.', '_', '-'"),
        "",
        "letter:",
        _field(2, "type", "appeal" if appeal else "lmn", _one_of(LetterSpec, "type")),
        _field(2, "date", "", "optional, YYYY-MM-DD (default: the day it is drafted)"),
        _field(2, "date_style", "us", f"{_one_of(LetterSpec, 'date_style')} (how the header writes dates)"),
        "",
        "patient:",
        _field(2, "name", "", "required: as on the insurance card"),
        _field(2, "birth_date", "", "required, YYYY-MM-DD"),
        _field(2, "sex", "", f"optional, {_one_of(Patient, 'sex')}"),
        _field(2, "member_id", "", "optional: letters and digits, in quotes if it starts with 0"),
        _field(2, "group_number", "", "optional: letters and digits"),
        _field(2, "medicare_number", "", "optional: the MBI (11 characters), Medicare plans only"),
        _field(2, "address", "", "optional"),
        "",
        "payer:",
        _field(2, "name", "", "required"),
        _field(2, "plan_type", "", f"required, {_one_of(Payer, 'plan_type')}"),
        _field(2, "state", "", "optional: two letters, e.g. CA"),
        _field(2, "policy", policy_set or "", f"optional: the payer's own criteria; {sets}"),
        _field(2, "address", "", "optional: where the letter goes"),
        _field(2, "fax", "", "optional"),
        "",
        "provider:",
        _field(2, "name", "", "required: the physician who signs"),
        _field(2, "credentials", "", "optional, e.g. MD"),
        _field(2, "specialty", "", "optional"),
        _field(2, "npi", "", "required: 10 digits, in quotes"),
        _field(2, "organization", "", "optional"),
        _field(2, "address", "", "optional"),
        _field(2, "phone", "", "optional"),
        _field(2, "fax", "", "optional"),
        "",
        _field(0, "diagnoses", "", "one or more"),
        _field(2, "- code", "", "required: a billable ICD-10-CM code, e.g. C41.4"),
        _field(4, "description", "", "optional"),
        "",
        "services:",
    ]
    for code, pol in pairs:
        if pol is None:
            lines += [
                f"  # {code}: no criteria on file. The letter rests on the clinician's documented rationale alone",
                "  # and names no policy: state findings (imaging, examination, treatments tried and their",
                "  # results), not conclusions; attach the payer's own policy for the code if it publishes one.",
                _field(2, "- code", f"'{code}'", "no criteria on file"),
                _field(4, "label", "", "required: the service in the clinician's words"),
                _field(4, "site", "", "optional: the site, e.g. left knee"),
                _field(4, "units", "1", "1 to 99"),
                _field(4, "date_of_service", "", "optional, YYYY-MM-DD: planned, or given (for an appeal)"),
                _field(4, "rationale", "", "one or more chart findings, each with its source and date"),
                _field(6, "- statement", "", "required: a finding in the chart's words"),
                _field(8, "source", "", "required: the note or report"),
                _field(8, "date", "", "required: YYYY-MM-DD"),
            ]
            continue
        lines += [
            _field(2, "- code", f"'{code}'", pol.label(code)),
            _field(4, "site", "", "optional: the site, e.g. left thigh mass"),
            _field(4, "units", "1", "1 to 99"),
            _field(4, "laterality", "", f"optional, {_one_of(Service, 'laterality')}"),
            _field(4, "date_of_service", "", "optional, YYYY-MM-DD: planned, or given (for an appeal)"),
        ]
    lines += ["", *([*_denial_block(), ""] if appeal else [])]
    lines += [
        "facts:",
        "  # One block per question. Uncomment a block and fill in its value when the chart documents it; a",
        "  # fact left out is unknown, which is not false. evidence (the chart's words), source (the note or",
        "  # report) and date (of that note, YYYY-MM-DD) are optional; the letter quotes them.",
    ]
    for q in _questions(pairs):
        lines.append("")
        lines += _wrapped("  # ", q.prompt)
        lines.append(f"  # ({_answer_hint(q)})")
        if q.help:
            lines += _wrapped("  #   ", q.help)
        lines += [f"  # {q.id}:", "  #   value:", "  #   evidence:", "  #   source:", "  #   date:"]
    lines += ["", _field(0, "enclosures", "", "optional: one item each, e.g. - CT report, 2026-10-28")]
    return "\n".join(lines) + "\n"


def csv_header(
    codes: list[str], kb: KnowledgeBase | None = None, *, appeal: bool = False, policy_set: str | None = None
) -> str:
    """The header row of a table of cases for these codes (``lettergen batch --csv``)."""
    import csv
    import io

    from lettergen.interfaces.table import header

    kb = kb or load_kb()
    pairs = _policies(codes, kb, check_policy_set(policy_set, codes, kb))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header([q.id for q in _questions(pairs)], appeal=appeal))
    return buf.getvalue()


def questionnaire_json(codes: list[str], kb: KnowledgeBase | None = None, *, policy_set: str | None = None) -> str:
    from lettergen.outputs.fhir_out import questionnaire

    kb = kb or load_kb()
    pairs = _policies(codes, kb, check_policy_set(policy_set, codes, kb))
    return json.dumps(questionnaire([c for c, _ in pairs], _questions(pairs)), indent=2) + "\n"
