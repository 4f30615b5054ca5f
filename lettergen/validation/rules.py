"""The validator: deterministic rules every letter must pass, always on.

Rules (numbered as in the project's design notes; other modules cite them by number):

1. every claim sentence cites at least one finding or fact, and every id resolves;
2. grounding: numbers, dates and codes in a claim appear in its findings, its facts or the case header;
3. polished against draft (see :mod:`lettergen.polish.guard`);
4. structure: the elements the letter type needs;
5. the letter never asserts necessity for a code whose verdict is not ``met``. A code with no criteria on file
   (``not_assessed``) that carries the clinician's documented rationale may be *requested* ("request prior
   authorization for", "authorize", "approve"), but no sentence that names it, nor any sentence stated for it
   (its rationale, ``grounds.<code>.<n>``, and ``verdict.<code>``), may say that it is necessary or medically
   necessary or that it meets, satisfies or qualifies under anything; without a documented rationale it may
   not be requested either;
6. no unfilled placeholders, no guarantees or absolute promises;
7. consistency: what the letter says of a code as a whole (its verdict, "rules out each exclusion") and of
   each criterion (its status word) agrees with the decision the letter was drafted from. A ``not_assessed``
   code is said to be neither met, nor not met, nor undecided, nor to have its exclusions ruled out: no
   criteria were checked for it.

A person's edit of a drafted letter is held to the same rules (:mod:`lettergen.validation.edits`): rule 3's meaning
check for every reworded sentence, rules 2, 5, 6 and 7 for new text, rule 4 for deleted text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lettergen.case.model import Case
from lettergen.decision.engine import Deadline, Decision
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter, Sentence

_MARKER = re.compile(r"\s?\[\d+(?:, \d+)*\]")
# Dates and CPT/HCPCS codes as the validator counts them; the polish lock (lock.py) tokenises these same
# patterns, so that a model can never see, and so never change, a date or code the validator checks.
# A letter writes dates long in prose (November 21, 2026) and numeric in its header (11/21/2026 or 2026-11-21);
# each is the same atom, compared as its ISO form.
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DATE_ATOM = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{2}/\d{2}/\d{4}\b|\b(?:" + "|".join(_MONTHS) + r") \d{1,2}, \d{4}\b")


def iso_date(text: str) -> str:
    """A date atom in its ISO form (2026-11-21); text that is no valid date stays as written."""
    if "/" in text:
        m, d, y = text.split("/")
        return f"{y}-{m}-{d}"
    if text[:1].isalpha():
        name, day, year = text.replace(",", "").split()
        return f"{year}-{_MONTHS.index(name) + 1:02d}-{int(day):02d}"
    return text


_ICD = re.compile(r"\b[A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}\b|\b[A-TV-Z]\d{2}\b")
HCPCS_ATOM = re.compile(r"\b[A-V]\d{4}\b|\b\d{4}[FTU]\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*%?")


class Issue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: int
    level: Literal["error", "warning"] = "error"
    sentence: str | None = None
    message: str


class ValidationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    checked: int
    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def markers(text: str) -> list[str]:
    return [m.strip() for m in _MARKER.findall(text)]


def atoms(text: str) -> list[str]:
    """Dates, codes and numbers in a text, as comparable tokens (citation markers excluded)."""
    return list(_atoms(text))


@lru_cache(maxsize=8192)
def _atoms(text: str) -> tuple[str, ...]:
    # Memoised: the same finding statements and template sentences recur in every letter of a batch.
    text = strip_markers(text)
    out: list[str] = []
    for rx, kind in ((DATE_ATOM, "date"), (_ICD, "code"), (HCPCS_ATOM, "code")):
        for m in rx.findall(text):
            out.append(f"{kind}:{iso_date(m) if kind == 'date' else m}")
        text = rx.sub(" ", text)
    out += [f"num:{n.replace(',', '')}" for n in _NUMBER.findall(text)]
    return tuple(out)


def positioned_atoms(text: str) -> list[tuple[int, str]]:
    """The atoms of a text and its citation markers, each with its offset, in the order they appear.

    The meaning check compares this order: "130.4 months against 159.3 months" is not the same claim as
    "159.3 months against 130.4 months", though both carry the same atoms."""
    found: list[tuple[int, str]] = []

    def blank(m: re.Match[str]) -> str:
        return " " * len(m.group(0))

    for m in _MARKER.finditer(text):
        found.append((m.start(), "cite:" + m.group(0).strip()))
    text = _MARKER.sub(blank, text)
    for rx, kind in ((DATE_ATOM, "date"), (_ICD, "code"), (HCPCS_ATOM, "code"), (_NUMBER, "num")):
        for m in rx.finditer(text):
            value = m.group(0)
            value = iso_date(value) if kind == "date" else value.replace(",", "") if kind == "num" else value
            found.append((m.start(), f"{kind}:{value}"))
        text = rx.sub(blank, text)
    return sorted(found)


def header_text(
    case: Case, letter_date: str | None = None, deadline: Deadline | None = None, policies: Iterable[str] = ()
) -> str:
    parts = [s.code for s in case.services] + [d.code for d in case.diagnoses]
    parts += [case.patient.birth_date.isoformat(), case.provider.npi]
    parts += [x for x in (case.provider.phone, case.provider.fax, case.provider.address, case.payer.address) if x]
    parts += [x for x in (case.payer.fax, case.patient.member_id, case.patient.group_number) if x]
    parts += [str(s.units) for s in case.services] + [s.site for s in case.services if s.site]
    if case.denial:
        parts += [
            case.denial.date.isoformat(),
            case.denial.reference,
            *case.denial.codes,
            str(case.denial.level),
        ]
    if letter_date:
        parts.append(letter_date)
    if deadline is not None:
        # The computed deadline and the date it was counted from are derived header data, like the letter date.
        parts += [d.isoformat() for d in (deadline.due, deadline.computed_from) if d is not None]
        parts += [x for x in (deadline.decision_within,) if x]
    # Titles and versions of the policies applied are named in verdict sentences (e.g. "CPB 0270 (2014)").
    parts += list(policies)
    return "\n".join(parts)


def policy_names(decision: Decision, kb: KnowledgeBase) -> list[str]:
    out = []
    for s in decision.services:
        if s.policy is None:  # no criteria on file: no policy is named
            continue
        pol = kb.policies.get(s.policy.split("@", 1)[0])
        if pol is not None:
            out += [pol.title, pol.version]
    return out


def grounding_text(s: Sentence, case: Case, kb: KnowledgeBase) -> str:
    parts: list[str] = []
    for cid in s.citations:
        hit = kb.citations.get(cid)
        if hit is not None:
            parts += [hit[1].statement, *hit[1].figures]
    for fid in s.facts:
        fact = case.chart_fact(fid)
        if fact is not None:
            parts += [str(fact.value), fact.evidence or "", fact.date.isoformat() if fact.date else ""]
            parts += [fact.source or "", fact.unit or ""]
    return "\n".join(parts)


# Rule 5: what asserts necessity, and what asks for the service. A met code may be said to be both; a code
# with no criteria on file and a documented rationale may be asked for only; any other code neither.
_ASSERTS = r"medically necessary|is necessary|are necessary|necessity is established|meets every"
_ASKS = r"request(?:ing)? (?:prior )?authori[sz]ation for|authori[sz]e|approve"
_NECESSITY = re.compile(rf"\b({_ASSERTS}|{_ASKS})\b", re.I)
# For a code no criteria were checked for, what no sentence may say of it: that it is medically necessary, or
# that it meets (satisfies, qualifies under) a criterion, policy, guideline, requirement or indication, negated
# or not (either is a verdict no criteria back). A sentence that names the code may not say "is necessary" of it
# either; its rationale (grounds.<code>.<n>) may ("assistance is necessary on stairs" is a finding).
_MEETS = (
    r"(?:meets?|met|satisf(?:y|ies|ied)|qualif(?:y|ies|ied))\b(?:\W+\w+){0,6}?\W+"
    r"(?:criteri(?:a|on)|polic(?:y|ies)|guidelines?|requirements?|indications?|coverage)"
)
_UNASSESSED_NAMED = re.compile(rf"\b(?:{_ASSERTS}|necessity|{_MEETS})\b", re.I)
_UNASSESSED_STATED = re.compile(rf"\b(?:medically necessary|necessity|meets every|{_MEETS})\b", re.I)
_NEGATION = re.compile(r"\b(not|no|cannot|never|does not|unable|until)\b", re.I)
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{%|%\}|\bTODO\b|\bTBD\b|\bXXX\b|\[(?:NAME|DATE|INSERT)[^\]]*\]|<<|>>", re.I)
PROMISE = re.compile(
    r"\b(guarantee[sd]?|promise[sd]?|risk[- ]free|no risk|100% (?:effective|safe|success)"
    r"|will (?:cure|eliminate|prevent)|certain to (?:cure|succeed|work))\b",
    re.I,
)

REQUIRED: dict[str, tuple[str, ...]] = {
    "lmn": ("header.patient", "header.birth_date", "signature.name", "signature.npi"),
    "determination": ("header.patient", "header.birth_date", "signature.name"),
    # Appeals (rule 4): the denial's date and reference, and the appeal deadline.
    "appeal": (
        "header.patient",
        "header.birth_date",
        "signature.name",
        "signature.npi",
        "header.denial_reference",
        "denial.date",
        "deadline.due",
    ),
    "external_review": (
        "header.patient",
        "header.birth_date",
        "signature.name",
        "header.denial_reference",
        "denial.date",
        "deadline.due",
    ),
    "peer_to_peer": ("header.patient", "header.denial_reference", "denial.date", "denial.reason", "deadline.due"),
}


def _case_strings(case: Case) -> list[str]:
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(case.model_dump())
    return sorted(out, key=len, reverse=True)


def check_sentence(s: Sentence, case: Case, kb: KnowledgeBase, header_atoms: set[str]) -> list[Issue]:
    """Rules 1 and 2 for one sentence."""
    issues: list[Issue] = []
    if s.kind != "claim":
        return issues
    if not s.citations and not s.facts:
        issues.append(Issue(rule=1, sentence=s.id, message="claim cites no finding and no fact"))
    for cid in s.citations:
        if not kb.has_citation(cid):
            issues.append(Issue(rule=1, sentence=s.id, message=f"cites unknown finding '{cid}'"))
    for fid in s.facts:
        if case.chart_fact(fid) is None:
            issues.append(Issue(rule=1, sentence=s.id, message=f"cites fact '{fid}' that the case does not document"))
    grounded = set(atoms(grounding_text(s, case, kb)))  # the header's atoms are looked up apart, not copied in
    for a in atoms(s.text):
        if a not in header_atoms and a not in grounded:
            issues.append(
                Issue(
                    rule=2,
                    sentence=s.id,
                    message=f"'{a.split(':', 1)[1]}' appears in no cited finding or fact",
                )
            )
    return issues


def necessity_issues(sentences: Iterable[Sentence], decision: Decision) -> list[Issue]:
    """Rule 5 (see the module docstring)."""
    # Each code's word pattern is compiled once per letter, and tried only where the code appears at all.
    unmet = [
        (s.code, re.compile(rf"\b{re.escape(s.code)}\b"), s.verdict == "not_assessed", bool(s.rationale))
        for s in decision.services
        if s.verdict != "met"
    ]
    issues = []
    for s in sentences:
        if s.id.startswith(("header.", "reference.", "missing.", "enclosure.")):
            continue
        for code, word, unassessed, grounded in unmet:
            named = code in s.text and word.search(s.text) is not None
            if not unassessed:
                if named and _NECESSITY.search(s.text) and not _NEGATION.search(s.text):
                    issues.append(
                        Issue(rule=5, sentence=s.id, message=f"asserts necessity for {code}, whose verdict is not met")
                    )
                continue
            # A code no criteria were checked for: the sentences that name it, and those stated for it.
            stated = s.id.split(".")[1:2] == [code] and s.id.startswith(("grounds.", "verdict."))
            if not (named or stated) or s.id.startswith("denial."):  # the denial's own words are reported
                continue
            m = (_UNASSESSED_NAMED if named else _UNASSESSED_STATED).search(s.text)
            if m:
                issues.append(
                    Issue(
                        rule=5,
                        sentence=s.id,
                        message=f"says '{m.group(0)}' of {code}, for which no criteria were checked (not assessed): "
                        "a letter may request it on its documented rationale, never say it is necessary or "
                        "meets anything",
                    )
                )
            elif not grounded and named and re.search(_ASKS, s.text, re.I):
                issues.append(
                    Issue(
                        rule=5,
                        sentence=s.id,
                        message=f"requests {code}, for which no criteria were checked and no rationale is documented",
                    )
                )
    return issues


def validate_letter(letter: Letter, case: Case, decision: Decision, kb: KnowledgeBase) -> ValidationResult:
    issues: list[Issue] = []
    header_atoms = set(atoms(header_text(case, None, decision.deadline, policy_names(decision, kb))))
    for s in letter.sentences:
        if s.kind == "claim":  # rules 1 and 2 concern claims only (check_sentence answers [] for the rest)
            issues += check_sentence(s, case, kb, header_atoms)
    ids = {s.id for s in letter.sentences}
    for need in REQUIRED.get(letter.type, ()):
        if need not in ids:
            issues.append(Issue(rule=4, message=f"the {letter.type} letter lacks '{need}'"))
    # A Medicare letter identifies the beneficiary by the Medicare number, which the header then prints in place
    # of a member id (templates/_header.j2): that letter needs the number, not the member id.
    # The memo and the talking points are the office's: they keep their own header (member id, or none).
    payer_letter = letter.type in ("lmn", "appeal", "external_review")
    medicare_number_instead = payer_letter and case.payer.plan_type == "medicare" and bool(case.patient.medicare_number)
    if medicare_number_instead and "header.medicare_number" not in ids:
        issues.append(Issue(rule=4, message="the letter lacks the Medicare number"))
    elif (
        case.patient.member_id
        and not medicare_number_instead
        and "header.member_id" not in ids
        and letter.type != "peer_to_peer"
    ):
        issues.append(Issue(rule=4, message="the letter lacks the member id"))
    issues += necessity_issues(letter.sentences, decision)
    issues += template_text_issues(letter.sentences, case)
    issues += consistency_issues(letter.sentences, decision)
    return ValidationResult(
        ok=not any(i.level == "error" for i in issues), checked=len(letter.sentences), issues=issues
    )


# Rule 7: what a sentence says of a code's verdict, of its exclusions, and of one criterion's status.
_SAYS_VERDICT: dict[str, re.Pattern[str]] = {
    "met": re.compile(
        r"\bmeets (?:each|every|all)\b|\bis medically necessary\b|\bevery (?:coverage )?criterion is met\b"
        r"|\ball (?:coverage )?criteria are met\b",
        re.I,
    ),
    "not_met": re.compile(
        r"\bdoes not meet\b|\bis not supported\b|\bnot supported;|\bcriteria are not met\b"
        r"|\bis not medically necessary\b",
        re.I,
    ),
    "insufficient": re.compile(
        r"\bcannot (?:yet )?be decided\b|\bnot established\b|\bneeds the documentation\b"
        r"|\bdocumentation is insufficient\b",
        re.I,
    ),
    "not_assessed": re.compile(
        r"\bnot (?:yet )?assessed against (?:any )?criteria\b|\bno criteria (?:are )?on file\b", re.I
    ),
}
_VERDICT_WORDS = {"met": "met", "not_met": "not met", "insufficient": "insufficient", "not_assessed": "not assessed"}
_EXCLUSIONS_CLEAR = re.compile(
    r"\brules? out (?:each|every|all|any) exclusions?\b|\bno exclusion (?:applies|is present)\b"
    r"|\bnone of the exclusions appl(?:y|ies)\b|\b(?:every|each|all) exclusions? (?:is|are) ruled out\b",
    re.I,
)
_STATUS_WORD = re.compile(r"\((Met|Not met|Not yet documented)\)\s*$")
_STATUS_OF = {"met": "Met", "not_met": "Not met", "unknown": "Not yet documented"}
_OPEN_EXCLUSION = re.compile(r"^\s*Not yet ruled out\b", re.I)
# Sentences that report what someone else said (the denial, its quoted reason) state no verdict of ours.
_REPORTED = ("denial.", "header.", "reference.", "missing.", "enclosure.")
# Every rule-7 pattern holds one of these words: a sentence without any (most findings) needs no search.
_RULE7_LITERALS = ("meet", "necessary", "criteri", "support", "decided", "established", "documentation", "exclusion")


def _summarises(sid: str) -> bool:
    """Whether a drafted sentence states something about a code as a whole or a criterion's status; a finding
    or chart fact under a criterion reports its source, and a policy's own words may speak of any patient."""
    return sid.startswith(("verdict.", "summary.", "determination.", "request.", "scope.", "new.")) or (
        sid.startswith("rationale.") and sid.endswith(".criterion")
    )


def _codes_of(s: Sentence, codes: list[str], default: list[str]) -> list[str]:
    parts = s.id.split(".")
    if len(parts) > 1 and parts[1] in codes:
        return [parts[1]]
    named = [c for c in codes if c in s.text and re.search(rf"\b{re.escape(c)}\b", s.text)]
    return named or default


def consistency_issues(
    sentences: Iterable[Sentence], decision: Decision, only: Iterable[Sentence] | None = None
) -> list[Issue]:
    """Rule 7: what the letter says of a code and its criteria agrees with the decision.

    A sentence speaks of the code its id names (``summary.20206``), else of the codes its text names,
    else (a sentence a person added, "No exclusion applies.") of every code the letter argues. The drafted
    sentences checked are those that summarise (:func:`_summarises`); ``only`` names the sentences to check
    instead, whatever their kind (an edit's changed and new ones)."""
    sentences = list(sentences)
    by_code = {s.code: s for s in decision.services}
    codes = list(by_code)
    named_in_ids = {s.id.split(".", 2)[1] for s in sentences if "." in s.id}
    argued = [c for c in codes if c in named_in_ids]
    issues: list[Issue] = []
    for s in sentences if only is None else only:
        if s.id.startswith(_REPORTED) or (only is None and not _summarises(s.id)):
            continue
        says: list[str] = []
        clear = False
        low = s.text.lower()
        if any(w in low for w in _RULE7_LITERALS):
            says = [v for v, rx in _SAYS_VERDICT.items() if rx.search(s.text)]
            clear = _EXCLUSIONS_CLEAR.search(s.text) is not None
        for code in _codes_of(s, codes, argued) if says or clear else ():
            sd = by_code[code]
            for verdict in says:
                if verdict != sd.verdict:
                    issues.append(
                        Issue(
                            rule=7,
                            sentence=s.id,
                            message=f"says {code} is {_VERDICT_WORDS[verdict]}, but its verdict is "
                            f"{_VERDICT_WORDS[sd.verdict]}",
                        )
                    )
            if clear and sd.verdict == "not_assessed":
                issues.append(
                    Issue(
                        rule=7,
                        sentence=s.id,
                        message=f"says every exclusion is ruled out for {code}, but no criteria were checked for it",
                    )
                )
            open_exclusions = [r.id for r in sd.criteria if r.kind == "exclusion" and r.status != "met"]
            if open_exclusions and clear:
                issues.append(
                    Issue(
                        rule=7,
                        sentence=s.id,
                        message=f"says every exclusion is ruled out for {code}, but "
                        f"{', '.join(open_exclusions)} is not",
                    )
                )
        parts = s.id.split(".")
        if len(parts) == 4 and parts[0] == "rationale" and parts[3] == "criterion" and parts[1] in by_code:
            result = next((r for r in by_code[parts[1]].criteria if r.id == parts[2]), None)
            if result is None:
                continue
            m = _STATUS_WORD.search(s.text)
            if m and m.group(1) != _STATUS_OF[result.status]:
                issues.append(
                    Issue(
                        rule=7,
                        sentence=s.id,
                        message=f"marks criterion {result.id} of {parts[1]} '{m.group(1)}', but its status is "
                        f"'{_STATUS_OF[result.status]}'",
                    )
                )
            if result.kind == "exclusion" and result.status == "met" and _OPEN_EXCLUSION.search(s.text):
                issues.append(
                    Issue(
                        rule=7,
                        sentence=s.id,
                        message=f"says exclusion {result.id} of {parts[1]} is not yet ruled out, but the record "
                        "rules it out",
                    )
                )
    return issues


_RULE6_HINTS = (
    "{",
    "}",
    "%",
    "[name",
    "[date",
    "[insert",
    "<<",
    ">>",
    "todo",
    "tbd",
    "xxx",
    "guarant",
    "promis",
    "risk",
    "will ",
    "certain",
)


_RULE6_LITERALS = re.compile("|".join(re.escape(h) for h in _RULE6_HINTS))


def _rule6_suspects(sentences: list[Sentence]) -> list[Sentence]:
    """The sentences that hold one of the literal triggers: a cheap necessary condition for either rule-6
    pattern to match (both are costly to search, and no shipped sentence needs them)."""
    return [s for s in sentences if _RULE6_LITERALS.search(s.text.lower())]


def template_text_issues(sentences: Iterable[Sentence], case: Case) -> list[Issue]:
    """Rule 6 on the template's own words: case text may hold anything and prints as typed."""
    values: list[str] | None = None
    issues = []
    for s in _rule6_suspects(list(sentences)):
        text = s.text
        if not (PLACEHOLDER.search(text) or PROMISE.search(text)):
            continue  # nothing to exempt: the common case, kept cheap
        if values is None:
            values = _case_strings(case)
        for v in values:
            if v and v in text:
                text = text.replace(v, " ")
        if PLACEHOLDER.search(text):
            issues.append(Issue(rule=6, sentence=s.id, message="contains an unfilled placeholder"))
        m = PROMISE.search(text)
        if m:
            issues.append(
                Issue(rule=6, sentence=s.id, message=f"makes a guarantee or absolute promise ('{m.group(0)}')")
            )
    return issues
