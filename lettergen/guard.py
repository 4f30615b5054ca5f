"""The polish guard (validator rule 3, see lettergen.validate): a polished sentence says exactly what its draft said.

Both texts are compared in their locked form (see :mod:`lettergen.lock`): the candidate must carry the
same tokens, each as often as the draft; no number, date or code may appear or vanish outside tokens;
negations, comparators and modal verbs keep their counts; no clinical term from the shipped lexicon
(drugs, procedures, anatomy, conditions) is added or dropped; the length stays within bounds; and the
candidate stays one plain sentence with no markup, links, promises or new assertions of necessity.

:func:`check` returns the reasons a candidate fails, in plain words the model can act on; none means
it passes. It is a pure function of its inputs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import yaml

from lettergen.case import Case
from lettergen.kb import KnowledgeBase
from lettergen.lock import BRACKET, TOKEN, Vault
from lettergen.render import Sentence
from lettergen.validate import PLACEHOLDER, PROMISE, Issue, atoms, check_sentence, header_text

LENGTH_MIN, LENGTH_MAX = 0.5, 1.6
SHORT = 8  # sentences up to this many words may grow by a few words more than the ratio allows
_LEXICON = Path(__file__).resolve().parent / "guard_lexicon.yaml"

_NEGATION = re.compile(
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
    "need to": re.compile(r"\b(?:has|have|had)\s+to\b|\bneeds?\s+to\b|\b(?:is|are)\s+(?:required|needed)\s+to\b", re.I),
    "should": re.compile(r"\bshould\b|\bought\s+to\b", re.I),
    "may": re.compile(r"\bmay\b|\bmight\b|\bcan\b|\bcannot\b|\bcould\b|\bca(?=n['’]t)", re.I),
    "will": re.compile(r"\bwill\b|\bwould\b|\bshall\b|\bwo(?=n['’]t)", re.I),
}
_NUMBER_WORDS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|thousand|million|half|twice|thrice|double|triple|single|dozen|first|second|third|fourth|fifth)\b",
    re.I,
)
_NECESSITY = re.compile(
    r"\b(?:medically necessary|necessary|necessity|meets every|authori[sz]e|approve|approval|cover|coverage)\b", re.I
)
_SENTENCE_BREAK = re.compile(r"[.!?;:)]\s+(?=[A-Z⟦(])")
_MARKUP = re.compile(r"[<>*#`{}|\[\]_\\]|https?://|www\.", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


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


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-/]", " ", text.lower()).split())


@lru_cache(maxsize=8192)
def clinical_terms(text: str) -> frozenset[str]:
    rx, canon = lexicon()
    return frozenset(canon[m.group(1)] for m in rx.finditer(_norm(TOKEN.sub(" ", text))))


def _free(text: str) -> str:
    return TOKEN.sub(" ", text)


@dataclass(frozen=True)
class Features:
    """What the guard compares, computed once per distinct locked text."""

    tokens: Counter[tuple[str, str]]
    atoms: Counter[str]
    number_words: Counter[str]
    negations: int
    comparators: Counter[str]
    modals: Counter[str]
    terms: frozenset[str]
    words: int
    breaks: int
    markup: bool
    placeholder: bool
    necessity: int
    promises: int


@lru_cache(maxsize=8192)
def features(text: str) -> Features:
    free = _free(text)

    def classes(table: dict[str, re.Pattern[str]]) -> Counter[str]:
        counts = {k: len(rx.findall(free)) for k, rx in table.items()}
        return Counter({k: n for k, n in counts.items() if n})

    return Features(
        tokens=Counter(TOKEN.findall(text)),
        atoms=Counter(atoms(free)),
        number_words=Counter(w.lower() for w in _NUMBER_WORDS.findall(free)),
        negations=len(_NEGATION.findall(free)),
        comparators=classes(_COMPARATORS),
        modals=classes(_MODALS),
        terms=frozenset(clinical_terms(text)),
        words=len(_WORD.findall(free)) + len(TOKEN.findall(text)),
        breaks=len(_SENTENCE_BREAK.findall(text)),
        markup=bool(_MARKUP.search(free)),
        placeholder=bool(PLACEHOLDER.search(free)),
        necessity=len(_NECESSITY.findall(free)),
        promises=len(PROMISE.findall(free)),
    )


def _diff(kind: str, before: Counter[str], after: Counter[str]) -> list[str]:
    out = []
    for k in sorted(set(before) | set(after)):
        if before[k] != after[k]:
            verb = "adds" if after[k] > before[k] else "drops"
            out.append(f"{verb} {kind} '{k}'")
    return out


def check(original: str, candidate: object) -> list[str]:
    """Reasons why ``candidate`` is not a faithful rewording of ``original`` (both locked); [] if it is."""
    if not isinstance(candidate, str) or not candidate.strip():
        return ["the answer for this sentence is missing or not a string"]
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
    reasons += _diff("number word", o.number_words, c.number_words)
    if o.negations != c.negations:
        verb = "adds" if c.negations > o.negations else "drops"
        reasons.append(f"{verb} a negation ({o.negations} before, {c.negations} after)")
    reasons += _diff("comparator", o.comparators, c.comparators)
    reasons += _diff("modal verb", o.modals, c.modals)
    reasons += [f"adds the clinical term '{t}'" for t in sorted(c.terms - o.terms)]
    reasons += [f"drops the clinical term '{t}'" for t in sorted(o.terms - c.terms)]
    low, high = LENGTH_MIN * o.words, max(LENGTH_MAX * o.words, o.words + 4 if o.words <= SHORT else 0)
    if not low <= c.words <= high:
        reasons.append(f"length {c.words} words is outside {low:g}-{high:g} for a draft of {o.words}")
    if c.breaks > o.breaks:
        reasons.append("adds a sentence")
    if "\n" in candidate.strip():
        reasons.append("contains a line break")
    if c.markup and not o.markup:
        reasons.append("contains markup, brackets or a link")
    if c.placeholder and not o.placeholder:
        reasons.append("contains an unfilled placeholder")
    if c.necessity > o.necessity:
        reasons.append("adds an assertion of necessity or coverage")
    if c.promises > o.promises:
        reasons.append("adds a guarantee or promise")
    return reasons


def judge(
    original: str,
    candidate: object,
    vault: Vault,
    sentences: list[Sentence],
    case: Case,
    kb: KnowledgeBase,
    header_atoms: set[str] | None = None,
) -> list[str]:
    """Everything a polished sentence must pass: the guard, then (unlocked) the validator's sentence rules.

    ``sentences`` are the letter's sentences that share this locked text; each keeps its own citations.
    Only validator issues the draft sentence did not already have count against the candidate.
    """
    reasons = check(original, candidate)
    if reasons or not isinstance(candidate, str):
        return reasons
    text = " ".join(vault.unlock(candidate).split())
    if header_atoms is None:
        header_atoms = set(atoms(header_text(case)))
    out: set[str] = set()
    for s in sentences:
        issues = _sentence_issues(s.model_copy(update={"text": text}), case, kb, header_atoms)
        if issues:
            draft = {(i.rule, i.message) for i in _sentence_issues(s, case, kb, header_atoms)}
            out.update(f"validator rule {i.rule}: {i.message}" for i in issues if (i.rule, i.message) not in draft)
    return sorted(out)


def _sentence_issues(s: Sentence, case: Case, kb: KnowledgeBase, header_atoms: set[str]) -> list[Issue]:
    # Rules 1 and 2 here; rule 6 (placeholders, promises) is in check(), and api.draft validates the whole letter.
    return [i for i in check_sentence(s, case, kb, header_atoms) if i.level == "error"]
