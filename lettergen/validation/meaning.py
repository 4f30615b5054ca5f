"""The meaning check: does a rewording of a sentence say exactly what the sentence said?

One check, two callers. The polish guard (:mod:`lettergen.polish.guard`, validator rule 3) asks it of a model's
rewording of a locked sentence; the edit check (:mod:`lettergen.validation.edits`) asks it of a person's edit of a
letter's sentence. Both texts are compared by what carries meaning, never by wording:

- tokens (in locked text), numbers, dates, codes and citation markers: the same ones, as often, **in the
  same order** ("130.4 against 159.3 months" is not "159.3 against 130.4 months");
- number words, negations, comparators and modal verbs keep their counts per class;
- hedges, quantifiers and generalisations, condition words (malignant, benign, suspected, confirmed...),
  units and every word of the shipped antonym pairs keep their counts per class
  (``meaning_words.yaml``), so "suitable" cannot become "unsuitable", nor "most" become "all";
- no clinical term (drug, procedure, anatomy, condition; ``guard_lexicon.yaml``) is added or dropped;
- no new promise, placeholder, assertion of necessity, or clause addressed to the reader or a reviewer;
- for a model only: one plain sentence, no markup, and a length near the draft's.

What a person may do that a model may not is written in :data:`ALLOWANCES`, and only there.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from lettergen.validation.rules import PLACEHOLDER, PROMISE, atoms, positioned_atoms

Reader = Literal["model", "person"]

TOKEN = re.compile(r"⟦([PT])(\d+)⟧")
BRACKET = re.compile(r"[⟦⟧]")

_HERE = Path(__file__).resolve().parent
_LEXICON = _HERE / "guard_lexicon.yaml"
_WORDS = _HERE / "meaning_words.yaml"


@dataclass(frozen=True)
class Allowance:
    """How far a rewording may stray in form (never in meaning) for one kind of writer."""

    length: tuple[float, float]  # candidate words / draft words
    short: int  # a draft of at most this many words may also grow by ``slack`` words
    slack: int
    markup: bool  # markup, brackets or links may be added
    line_breaks: bool


ALLOWANCES: dict[Reader, Allowance] = {
    # A model rewords for fluency: any large change of length means it added or dropped content, and the
    # letter's layout (markup, line breaks) is the template's, never the model's.
    "model": Allowance(length=(0.5, 1.6), short=8, slack=4, markup=False, line_breaks=False),
    # A person who signs the letter may rewrite a sentence more freely (shorten it to its point, spell out
    # an abbreviation, bold a phrase in the word processor): length and markup are theirs to choose. Every
    # check of meaning above still applies, word order of the facts included.
    "person": Allowance(length=(0.2, 4.0), short=12, slack=12, markup=True, line_breaks=True),
}

NEGATION = re.compile(
    r"\b(?:not|no|never|none|nor|neither|nothing|nobody|without|cannot|unable|absent|absence|lack|lacks|lacking"
    r"|fail|fails|failed)\b|n['’]t\b",
    re.I,
)
_COMPARATORS: dict[str, re.Pattern[str]] = {
    "more": re.compile(
        r"\b(?:more|greater|higher|larger|longer|older|exceed(?:s|ed|ing)?)\b|\b(?:above|over)\s+(?=⟦|\d)|>", re.I
    ),
    "less": re.compile(r"\b(?:less|fewer|lower|smaller|shorter|younger)\b|\b(?:below|under)\s+(?=⟦|\d)|<", re.I),
    "at least": re.compile(r"\bat\s+least\b|\bminimum\b|≥", re.I),
    "at most": re.compile(r"\bat\s+most\b|\bup\s+to\b|\bmaximum\b|\bwithin\s+(?=⟦|\d)|≤", re.I),
    "equal": re.compile(r"=|\bequal(?:s|led)?\b", re.I),
    "before": re.compile(r"\bbefore\b|\bprior\s+to\b|\buntil\b|\bpreceding\b|\bahead\s+of\b", re.I),
    "after": re.compile(r"\bafter\b|\bfollowing\b|\bsince\b|\bonce\b|\blater\s+than\b", re.I),
}
_MODALS: dict[str, re.Pattern[str]] = {
    "must": re.compile(r"\bmust\b", re.I),
    "need to": re.compile(
        r"\b(?:has|have|had)\s+to\b|\bneeds?\s+to\b|\b(?:is|are)\s+(?:required|needed)\s+to\b"
        r"|\b(?:be|is|are)\s+needed\b",
        re.I,
    ),
    "should": re.compile(r"\bshould\b|\bought\s+to\b", re.I),
    "may": re.compile(r"\bmay\b|\bmight\b|\bcan\b|\bcannot\b|\bcould\b|\bca(?=n['’]t)", re.I),
    "will": re.compile(r"\bwill\b|\bwould\b|\bshall\b|\bwo(?=n['’]t)", re.I),
}
_NUMBER_WORDS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|thousand|million|half|twice|thrice|double|triple|single|dozen|first|second|third|fourth|fifth)\b",
    re.I,
)
NECESSITY = re.compile(
    r"\b(?:medically necessary|necessary|necessity|meets every|authori[sz]e|approve|approval|cover|coverage)\b", re.I
)
# A clause that speaks to whoever (or whatever) reads the letter rather than about the patient: an
# instruction to a reviewer, an automated reader or a model has no place in a letter of record.
READER_ADDRESS = re.compile(
    r"\b(?:you|reviewers?|readers?|assistants?|models?|bots?|(?:ai|automated|language|review)\s+"
    r"(?:systems?|models?|reviewers?|tools?|readers?))\b[^.;]{0,60}?\b(?:are|is|should|must|will|shall|may)?"
    r"\s*(?:be\s+)?(?:told|instructed|asked|directed|ordered|commanded|supposed|expected)\s+to\b"
    r"|\b(?:ignore|disregard|skip|bypass|override|forget)\s+(?:(?:all|any|the|these|those|previous|prior|above"
    r"|remaining|following|other|earlier)\s+)*(?:instructions?|rules?|checks?|guard\w*|validat\w*|criteria"
    r"|steps?|prompts?|above|warnings?)\b"
    r"|\b(?:reading|processing|parsing|reviewing)\s+this\s+(?:letter|text|document|message|request)\b"
    r"|\bnote\s+to\s+(?:the\s+)?(?:reviewer|reader|model|ai|system)s?\b",
    re.I,
)
# A superlative ("the most frequent site", "most often in the lung") ranks; it does not quantify.
_SUPERLATIVE = re.compile(r"\bthe most\b|\bmost (?:often|frequently|commonly)\b")
_SENTENCE_BREAK = re.compile(r"[.!?;:)]\s+(?=[A-Z⟦(])")
_MARKUP = re.compile(r"[<>*#`{}|\[\]_\\]|https?://|www\.", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_CITE = re.compile(r"\s?\[\d+(?:, ?\d+)*\]")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-/]", " ", text.lower()).split())


def _words_rx(words: Iterable[str]) -> re.Pattern[str]:
    alts = sorted({_norm(str(w)) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w])")


@cache
def lexicon() -> tuple[re.Pattern[str], dict[str, str]]:
    """The clinical-term matcher: one regex over every variant, and variant -> canonical term."""
    data = yaml.safe_load(_LEXICON.read_text(encoding="utf-8"))
    canon: dict[str, str] = {}
    for group in ("drugs", "procedures", "anatomy", "conditions"):
        for entry in data[group]:
            for variant in entry:
                canon[_norm(str(variant))] = _norm(str(entry[0]))
    alts = sorted(canon, key=len, reverse=True)
    rx = re.compile(r"\b(" + "|".join(re.escape(a) for a in alts) + r")(?:s|es)?\b")
    return rx, canon


@lru_cache(maxsize=8192)
def clinical_terms(text: str) -> frozenset[str]:
    rx, canon = lexicon()
    return frozenset(canon[m.group(1)] for m in rx.finditer(_norm(TOKEN.sub(" ", text))))


_WORD_KEYS = {"version", "hedges", "quantifiers", "conditions", "units", "antonyms"}


@cache
def word_classes() -> dict[str, re.Pattern[str]]:
    """Every class the meaning check counts, by name ("hedge:rare", "antonym:2b"...), from meaning_words.yaml."""
    data: Any = yaml.safe_load(_WORDS.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - _WORD_KEYS:
        raise ValueError(f"{_WORDS.name}: unknown keys {sorted(set(data) - _WORD_KEYS)}")
    out: dict[str, re.Pattern[str]] = {}
    for family in ("hedges", "quantifiers"):
        for name, words in data[family].items():
            out[f"{family[:-1]}:{name}"] = _words_rx(words)
    for family in ("conditions", "units"):
        for entry in data[family]:
            out[f"{family[:-1]}:{entry[0]}"] = _words_rx(entry)
    for one, other in data["antonyms"]:
        out[f"antonym:{one[0]}"] = _words_rx(one)
        out[f"antonym:{other[0]}"] = _words_rx(other)
    return out


def _class_counts(table: dict[str, re.Pattern[str]], text: str) -> Counter[str]:
    counts = {k: len(rx.findall(text)) for k, rx in table.items()}
    return Counter({k: n for k, n in counts.items() if n})


@dataclass(frozen=True)
class Features:
    """What the meaning check compares, computed once per distinct text."""

    tokens: Counter[tuple[str, str]]
    atoms: Counter[str]
    cites: Counter[str]
    sequence: tuple[str, ...]
    number_words: Counter[str]
    negations: int
    comparators: Counter[str]
    modals: Counter[str]
    words_of: Counter[str]
    terms: frozenset[str]
    words: int
    breaks: int
    markup: bool
    placeholder: bool
    necessity: int
    promises: int
    addresses: int


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


@lru_cache(maxsize=8192)
def features(text: str) -> Features:
    free = TOKEN.sub(" ", text)
    plain = _CITE.sub(" ", free)
    # Tokens first (as themselves), then atoms and citation markers of the text between them.
    seq = sorted(
        [(m.start(), "tok:" + m.group(0)) for m in TOKEN.finditer(text)] + positioned_atoms(TOKEN.sub(_blank, text))
    )
    low = _SUPERLATIVE.sub(" ", _norm(plain))
    return Features(
        tokens=Counter(TOKEN.findall(text)),
        atoms=Counter(atoms(free)),
        cites=Counter(m.group(0).strip().replace(", ", ",").replace(",", ", ") for m in _CITE.finditer(free)),
        sequence=tuple(a for _, a in seq),
        number_words=Counter(w.lower() for w in _NUMBER_WORDS.findall(plain)),
        negations=len(NEGATION.findall(plain)),
        comparators=_class_counts(_COMPARATORS, free),
        modals=_class_counts(_MODALS, plain),
        words_of=_class_counts(word_classes(), low),
        terms=clinical_terms(text),
        words=len(_WORD.findall(free)) + len(TOKEN.findall(text)),
        breaks=len(_SENTENCE_BREAK.findall(text)),
        markup=bool(_MARKUP.search(free)),
        placeholder=bool(PLACEHOLDER.search(free)),
        necessity=len(NECESSITY.findall(free)),
        promises=len(PROMISE.findall(free)),
        addresses=len(READER_ADDRESS.findall(free)),
    )


def _diff(kind: str, before: Counter[str], after: Counter[str]) -> list[str]:
    out = []
    for k in sorted(set(before) | set(after)):
        if before[k] != after[k]:
            verb = "adds" if after[k] > before[k] else "drops"
            out.append(f"{verb} {kind} '{k}'")
    return out


def _class_reasons(before: Counter[str], after: Counter[str]) -> list[str]:
    names = {"hedge": "hedge", "quantifier": "quantifier", "condition": "condition word", "unit": "unit"}
    out = []
    for k in sorted(set(before) | set(after)):
        if before[k] == after[k]:
            continue
        family, _, name = k.partition(":")
        verb = "adds" if after[k] > before[k] else "drops"
        if family == "antonym":
            out.append(f"{verb} '{name}' (a word of an antonym pair)")
        else:
            out.append(f"{verb} {names[family]} '{name}'")
    return out


def _order_reason(before: tuple[str, ...], after: tuple[str, ...]) -> str | None:
    if before == after or Counter(before) != Counter(after):
        return None  # a different set is reported by the counts; only a new order of the same set is said here
    i = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b)
    return f"changes the order of {before[i].split(':', 1)[1]} and {after[i].split(':', 1)[1]}"


def compare(original: str, candidate: object, reader: Reader = "model", keep: Iterable[str] = ()) -> list[str]:
    """Reasons why ``candidate`` does not say what ``original`` said; [] if it does.

    ``reader`` picks the :data:`ALLOWANCES` of the writer; ``keep`` are strings (names of the people in
    the letter) that must appear in the candidate as often as in the original. A pure function."""
    if not isinstance(candidate, str) or not candidate.strip():
        return ["the answer for this sentence is missing or not a string"]
    allow = ALLOWANCES[reader]
    o, c = features(original), features(candidate)
    reasons: list[str] = []
    for kind, num in sorted(set(o.tokens) | set(c.tokens)):
        tok = f"⟦{kind}{num}⟧"
        w, g = o.tokens[(kind, num)], c.tokens[(kind, num)]
        if w == 0:
            reasons.append(f"uses token {tok}, which is not in the sentence")
        elif g == 0:
            reasons.append(f"drops token {tok}")
        elif g != w:
            reasons.append(f"uses token {tok} {g} times instead of {w}")
    if BRACKET.search(TOKEN.sub("", candidate)):
        reasons.append("contains a broken token")
    reasons += _diff("number, date or code", o.atoms, c.atoms)
    reasons += _diff("citation", o.cites, c.cites)
    order = _order_reason(o.sequence, c.sequence)
    if order:
        reasons.append(order)
    reasons += _diff("number word", o.number_words, c.number_words)
    if o.negations != c.negations:
        verb = "adds" if c.negations > o.negations else "drops"
        reasons.append(f"{verb} a negation ({o.negations} before, {c.negations} after)")
    reasons += _diff("comparator", o.comparators, c.comparators)
    reasons += _diff("modal verb", o.modals, c.modals)
    reasons += _class_reasons(o.words_of, c.words_of)
    reasons += [f"adds the clinical term '{t}'" for t in sorted(c.terms - o.terms)]
    reasons += [f"drops the clinical term '{t}'" for t in sorted(o.terms - c.terms)]
    low = allow.length[0] * o.words
    high = max(allow.length[1] * o.words, o.words + allow.slack if o.words <= allow.short else 0)
    if not low <= c.words <= high:
        reasons.append(f"length {c.words} words is outside {low:g}-{high:g} for a draft of {o.words}")
    if c.breaks > o.breaks:
        reasons.append("adds a sentence")
    if not allow.line_breaks and "\n" in candidate.strip():
        reasons.append("contains a line break")
    if not allow.markup and c.markup and not o.markup:
        reasons.append("contains markup, brackets or a link")
    if c.placeholder and not o.placeholder:
        reasons.append("contains an unfilled placeholder")
    if c.necessity > o.necessity:
        reasons.append("adds an assertion of necessity or coverage")
    if c.promises > o.promises:
        reasons.append("adds a guarantee or promise")
    if c.addresses > o.addresses:
        reasons.append("addresses the reader or a reviewer")
    for name in keep:
        if name and original.count(name) != candidate.count(name):
            reasons.append(f"changes or drops the name '{name}'")
    return reasons


def new_text_reasons(text: str, known_atoms: set[str], known_terms: frozenset[str]) -> list[str]:
    """What new text (a sentence a person added to a letter) may not carry: a number, date or code, or a
    drug, procedure, anatomy or condition term that no source of the letter has; a promise; a placeholder;
    a clause addressed to the reader or a reviewer. Courtesy and connective text passes."""
    f = features(text)
    reasons = []
    strange = [a.split(":", 1)[1] for a in f.atoms if a not in known_atoms]
    if strange:
        reasons.append(f"carries {', '.join(strange)}, which no source supports")
    unknown = sorted(f.terms - known_terms)
    if unknown:
        reasons.append(f"names {', '.join(unknown)}, which no source of the letter names")
    if f.promises:
        reasons.append("makes a guarantee or absolute promise")
    if f.placeholder:
        reasons.append("leaves an unfilled placeholder")
    if f.addresses:
        reasons.append("addresses the reader or a reviewer")
    return reasons
