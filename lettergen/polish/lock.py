"""Locking: what a model may see of a letter, and the way back.

Before a sentence leaves the machine, every patient identifier (name, birth date, member id, claim or
denial reference, addresses, NPI) becomes a placeholder ``⟦P1⟧``, and every fact value, figure, date, code,
quoted policy title and citation marker becomes an opaque token ``⟦T3⟧``. The model edits the words around
them; :meth:`Vault.unlock` puts the values back. Tokens are numbered per letter in order of first
appearance, so the same value always gets the same token and the mapping is deterministic.

Only prose goes out: claims and structural sentences of the letter's paragraphs. Header lines, the fax
cover page, the signature block, references, enclosures, missing-documentation questions and table rows never
do, nor do the sentences that carry what the letter decides or asks (:data:`NEVER_SENT`): their wording is the
template's, whatever the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from lettergen.case.model import Case
from lettergen.decision.engine import Decision
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.claims import fact_value_text
from lettergen.letter.render import Sentence
from lettergen.validation.meaning import BRACKET as BRACKET
from lettergen.validation.meaning import TOKEN as TOKEN
from lettergen.validation.rules import DATE_ATOM, HCPCS_ATOM

# Sentence-id prefixes that are never sent: the letter's scaffolding, not its prose.
NOT_PROSE = (
    "header.",
    "signature.",
    "reference.",
    "enclosure.",
    "missing.",
    "determination.",
    "cover.",
    "salutation",
    "closing",
    "date",
)
# Sentence-id prefixes that are never sent although they are prose: the sentences that carry a verdict
# (``verdict.<code>``, a determination's ``summary.<code>``), the request (``summary.intro`` names what is
# requested or appealed, ``request.*`` the asks, ``scope.others`` what the letter leaves out), a deadline
# (``deadline.due``) or the denial's facts (``denial.*``). A reworded verdict, ask or deadline is where a
# change of meaning costs the most, and these sentences are data laid out by the template, with little
# wording of their own to improve.
NEVER_SENT = ("verdict.", "summary.", "request.", "scope.", "deadline.", "denial.")
# ... and, by pattern, a criterion's statement (``rationale.<code>.<criterion>.criterion``, which carries the
# criterion's status in a determination) and a determination's list of criteria not yet documented
# (``rationale.<code>.open``).
NEVER_SENT_PATTERN = re.compile(r"rationale\.[^.]+\.(?:[^.]+\.criterion|open)")
MIN_WORDS = 3  # a sentence with fewer free words than this has nothing to polish

_MARKER = re.compile(r"\[\d+(?:, ?\d+)*\]")
_QUOTED = re.compile(r"(?<![\w'])'[^'\n]{2,}?'(?![\w'])")
_ICD = re.compile(r"\b[A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\s?[-–]\s?\d+(?:[.,]\d+)*)?%?")
_PATTERNS = (_MARKER, _QUOTED, DATE_ATOM, _ICD, HCPCS_ATOM, _NUMBER)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def is_prose(sentence: Sentence) -> bool:
    """Whether a sentence may be sent to a model to be polished (decided by its id alone)."""
    sid = sentence.id
    return not sid.startswith(NOT_PROSE + NEVER_SENT) and NEVER_SENT_PATTERN.fullmatch(sid) is None


def identifier_strings(case: Case) -> list[str]:
    """Everything that identifies the patient or the people around the request; never sent to a model."""
    out = list(case.identifiers())
    out += [x for x in (case.provider.address, case.payer.address, case.provider.phone, case.provider.fax) if x]
    out += [x for x in (case.payer.fax, case.provider.name) if x]
    return sorted(dict.fromkeys(x for x in out if x.strip()), key=len, reverse=True)


def _name_parts(case: Case) -> list[str]:
    parts = re.split(r"[\s,]+", f"{case.patient.name} {case.provider.name}")
    return sorted({p.strip(".") for p in parts if len(p.strip(".")) >= 3}, key=len, reverse=True)


def _texts(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for v in values:
        if not v:
            continue
        v = " ".join(v.split())
        for form in (v, v.rstrip("."), v[:1].lower() + v[1:], v.lower()):
            if len(form) >= 3:
                out.append(form)
    return out


def case_literals(case: Case, decision: Decision, kb: KnowledgeBase) -> list[str]:
    """Case and knowledge-base strings that reach a sentence verbatim and are locked whole."""
    values: list[str | None] = [case.payer.name, case.provider.organization, case.provider.specialty]
    for fact in case.facts.values():
        values += [fact.evidence, fact.source, fact.unit]
        if isinstance(fact.value, str):
            values += [fact.value, fact_value_text(fact)]
    values += [s.site for s in case.services] + [d.description for d in case.diagnoses]
    values += [s.label for s in case.services]  # the clinician's words for a code with no criteria on file
    values += [x for s in case.services for r in s.rationale for x in (r.statement, r.source)]
    values += list(case.enclosures)
    for sd in decision.services:
        values.append(sd.label)
        pol = kb.policy_for(sd.code, case.payer.policy)
        if pol is not None:
            values.append(pol.title)
    if case.denial:
        values.append(case.denial.reason)
    return sorted(dict.fromkeys(_texts(values)), key=len, reverse=True)


@dataclass
class Vault:
    """The token table of one letter: token -> value, and the reverse."""

    values: dict[str, str] = field(default_factory=dict)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=lambda: {"P": 0, "T": 0})

    def token(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._by_value:
            self._counts[kind] += 1
            tok = f"⟦{kind}{self._counts[kind]}⟧"
            self._by_value[key] = tok
            self.values[tok] = value
        return self._by_value[key]

    def unlock(self, text: str) -> str:
        """Put the values back; a token this letter never issued is left as it is (the guard rejects it)."""
        return TOKEN.sub(lambda m: self.values.get(m.group(0), m.group(0)), text)


def outside_tokens(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` only to the parts of ``text`` that are not tokens already."""
    out: list[str] = []
    pos = 0
    for m in TOKEN.finditer(text):
        out += [fn(text[pos : m.start()]), m.group(0)]
        pos = m.end()
    out.append(fn(text[pos:]))
    return "".join(out)


def _alternation(values: list[str]) -> re.Pattern[str] | None:
    return _compiled_alternation(tuple(values)) if values else None


@lru_cache(maxsize=256)
def _compiled_alternation(values: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words only, never inside a token. Cached: a batch polishes many letters of one case shape,
    # and escaping and compiling the case's values cost more than locking the letter's sentences.
    body = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<![\w⟦])(?:{body})(?![\w⟧])")


class Locker:
    """Locks the sentences of one letter against one token table."""

    def __init__(self, case: Case, decision: Decision, kb: KnowledgeBase) -> None:
        self.vault = Vault()
        # Longest first, one pass per kind: identifiers, then name parts, then case and policy strings.
        self._passes: list[tuple[re.Pattern[str], str]] = []
        for values, kind in (
            (identifier_strings(case), "P"),
            (_name_parts(case), "P"),
            (case_literals(case, decision, kb), "T"),
        ):
            rx = _alternation(values)
            if rx is not None:
                self._passes.append((rx, kind))
        self._passes += [(rx, "T") for rx in _PATTERNS]

    def lock(self, text: str) -> str:
        for rx, kind in self._passes:
            # Most passes find nothing in most sentences; a match between tokens is also a match in the
            # whole text (tokens are bracketed by non-word marks), so one search decides whether to split.
            if rx.search(text) is not None:
                text = outside_tokens(text, self._substituter(rx, kind))
        return text

    def _substituter(self, rx: re.Pattern[str], kind: str) -> Callable[[str], str]:
        def sub(seg: str) -> str:
            return rx.sub(lambda m: self.vault.token(kind, m.group(0)), seg)

        return sub


def free_words(locked: str) -> list[str]:
    return _WORD.findall(TOKEN.sub(" ", locked))


def leaks(payload: str, case: Case) -> list[str]:
    """Which kinds of identifier appear in a payload (names of fields, never the values)."""
    found: list[str] = []
    low = payload.lower()
    named = {
        "patient.name": case.patient.name,
        "patient.birth_date": case.patient.birth_date.isoformat(),
        "patient.member_id": case.patient.member_id,
        "patient.address": case.patient.address,
        "patient.group_number": case.patient.group_number,
        "provider.npi": case.provider.npi,
        "denial.reference": case.denial.reference if case.denial else None,
    }
    for fld, value in named.items():
        if value and value.lower() in low:
            found.append(fld)
    return found
