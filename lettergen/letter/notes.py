"""The staff note: what the office needs and the payer must not read.

A payer letter names only the codes it requests and says only what is true and useful to the payer. Everything
else the drafting learned goes here, in Markdown: the verdict of every code, the codes no criteria were checked
for (and what the office must then attach or add), the questions the record still has to answer (most decisive
first), why a code is not requested, guideline points that would strengthen the request, coding conflicts (and
the NCCI edits of the CMS tables the office imported), what to enclose, and the filing deadline with its advice.
The CLI prints it on stderr and writes it beside the letter as ``<case_id>.<type>.notes.md``; the ledger keeps it.

It carries no patient identifier: the case is named by its case_id.
"""

from __future__ import annotations

from lettergen.decision.engine import Deadline
from lettergen.decision.ncci import NcciReport, report_lines
from lettergen.letter.claims import Material, code_word
from lettergen.letter.layout import long_date


def staff_note(
    material: Material, letter_type: str, deadline: Deadline | None = None, ncci: NcciReport | None = None
) -> str:
    case = material.case
    lines = [f"# Staff note for case {case.case_id}, {letter_type.replace('_', ' ')} (not for the payer)", ""]
    lines += ["## Verdicts", ""]
    payer_letter = letter_type in ("lmn", "appeal", "external_review")
    requested = {v.code for v in material.requested}
    for v in material.services:
        where = ""
        if payer_letter:
            where = "; in the letter" if v.code in requested else "; not in the letter"
        label = f" ({v.label})" if v.label else ""
        if v.policy is None:
            basis = "no criteria on file" + (", on the clinician's documented rationale" if v.grounds else "")
            lines.append(f"- {code_word(v.code)}{label}: {v.verdict.replace('_', ' ')} ({basis}){where}")
        else:
            lines.append(f"- {code_word(v.code)}{label}: {v.verdict.replace('_', ' ')} under {v.policy.title}{where}")
    unchecked = material.not_assessed
    if unchecked:
        lines += ["", "## No criteria checked", ""]
        for v in unchecked:
            i = next(i for i, s in enumerate(case.services) if s.code == v.code)
            if v.grounds:
                lines.append(
                    f"- {code_word(v.code)}: no criteria were checked for this code: lettergen has no criteria file "
                    "for it, so the letter claims nothing about any coverage policy and asks for authorization on "
                    f"the clinician's documented rationale alone ({len(v.grounds)} "
                    f"{'entry' if len(v.grounds) == 1 else 'entries'}, services[{i}].rationale). The payer will "
                    "judge it by its own policy, which nobody has checked this record against: before sending, "
                    "attach the payer's own policy for this code with the records that show each of its criteria, "
                    "or else the clinical rationale itself (the records each entry cites)."
                )
            else:
                lines.append(
                    f"- {code_word(v.code)}: no criteria were checked for this code (no criteria file), and the case "
                    "documents no rationale for it, so no payer letter requests it. Add under "
                    f"services[{i}] a `label` in the clinician's words and `rationale` entries (statement, source, "
                    "date), each a finding the chart documents (imaging, examination, treatments tried and their "
                    "results), then draft again; attach the payer's own policy for the code if it publishes one."
                )
            if not v.label:
                lines.append(f"  - Add services[{i}].label: the letter names this code by its number alone.")
    extra = [
        (i, s)
        for i, s in enumerate(case.services)
        if (s.rationale or s.label) and material.decision.service(s.code).policy is not None
    ]
    if extra:
        lines += ["", "## Criteria on file decide these codes", ""]
        for i, s in extra:
            parts = [f"services[{i}].label is not used (the criteria's label is)"] if s.label else []
            parts += ["its rationale entries are stated as clinical history"] if s.rationale else []
            lines.append(f"- {code_word(s.code)}: its criteria decide it; " + " and ".join(parts) + ".")
    needed = [v for v in material.services if v.decision.missing_facts]
    if needed:
        lines += ["", "## Documentation still needed (most decisive first)", ""]
        for v in needed:
            lines.append(f"- {code_word(v.code)}:")
            lines += [f"  - {m.question} (`{m.id}`)" for m in v.decision.missing_facts]
    failed = material.not_met
    if failed:
        lines += ["", "## Not supported by the criteria", ""]
        for v in failed:
            reasons = [r.text.rstrip(".") for r in v.decision.criteria if r.status == "not_met"]
            lines.append(f"- {code_word(v.code)}: " + "; ".join(reasons) + ".")
    points = [(v, cv) for v in material.services if v.verdict != "not_met" for cv in v.open_considerations]
    if points:
        lines += ["", "## Would strengthen the request (guideline points, not coverage conditions)", ""]
        lines += [f"- {code_word(v.code)}: {cv.result.text}" for v, cv in points]
    conflicts = [c for v in material.services for c in v.decision.conflicts]
    if conflicts:
        lines += ["", "## Coding", ""]
        seen: set[tuple[str, ...]] = set()
        for c in conflicts:
            if c.codes not in seen:
                seen.add(c.codes)
                lines.append(f"- {' with '.join(code_word(x) for x in c.codes)}: {c.reason}")
    if ncci is not None:  # the CMS tables the office imported (lettergen kb import-ncci): for the office only
        lines += ["", "## NCCI edits (CMS tables imported by the office; not for the payer)", ""]
        lines += [f"- {line}" for line in report_lines(ncci)]
    enclose = [(v, item) for v in material.met if v.policy is not None for item in v.policy.checklist]
    if enclose:
        lines += ["", "## Enclose with the letter", ""]
        lines += [f"- {code_word(v.code)}: {item}" for v, item in enclose]
    if case.payer.plan_type == "medicare" and letter_type in ("appeal", "external_review"):
        # 42 CFR 405.944(b): a redetermination request names the beneficiary, the Medicare number, the services
        # and their dates of service (cfr-42-405-subpart-i.redetermination-contents).
        absent = ["the Medicare number (patient.medicare_number)"] if not case.patient.medicare_number else []
        absent += [
            f"the date of service of {code_word(s.code)} (services[{i}].date_of_service)"
            for i, s in enumerate(case.services)
            if s.date_of_service is None
        ]
        if absent:
            lines += ["", "## Medicare request items missing (42 CFR 405.944(b))", ""]
            lines += [f"- Add {item}." for item in absent]
    if deadline is not None:
        lines += ["", "## Deadline", ""]
        due = long_date(deadline.due) if deadline.due else "not computable from the case"
        lines.append(f"- File by {due}. {deadline.basis}")
        lines += [f"- {n}" for n in deadline.notes]
    return "\n".join(lines) + "\n"
