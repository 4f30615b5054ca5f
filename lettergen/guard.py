"""The polish guard (DESIGN.md validator rule 3): a polished sentence says exactly what its draft said.

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
from functools import cache
from pathlib import Path

import yaml

from lettergen.case import Case
from lettergen.kb import KnowledgeBase
from lettergen.lock import BRACKET, TOKEN, Vault
from lettergen.render import Sentence
from lettergen.validate import PROMISE, atoms, check_sentence, header_text, template_text_issues

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


def clinical_terms(text: str) -> set[str]:
    rx, canon = lexicon()
    return {canon[m.group(1)] for m in rx.finditer(_norm(TOKEN.sub(" ", text)))}


def _free(text: str) -> str:
    return TOKEN.sub(" ", text)


def _count(rx: re.Pattern[str], text: str) -> int:
    return len(rx.findall(_free(text)))


def _classes(table: dict[str, re.Pattern[str]], text: str) -> Counter[str]:
    return Counter({k: _count(rx, text) for k, rx in table.items() if _count(rx, text)})


def _diff(kind: str, before: Counter[str], after: Counter[str]) -> list[str]:
    out = []
    for k in sorted(set(before) | set(after)):
        if before[k] != after[k]:
            verb = "adds" if after[k] > before[k] else "drops"
            out.append(f"{verb} {kind} '{k}'")
    return out


def _words(text: str) -> int:
    return len(_WORD.findall(_free(text))) + len(TOKEN.findall(text))


def check(original: str, candidate: object) -> list[str]:
    """Reasons why ``candidate`` is not a faithful rewording of ``original`` (both locked); [] if it is."""
    if not isinstance(candidate, str) or not candidate.strip():
        return ["the answer for this sentence is missing or not a string"]
    reasons: list[str] = []
    want, got = Counter(TOKEN.findall(original)), Counter(TOKEN.findall(candidate))
    for kind, num in sorted(set(want) | set(got)):
        tok = f"⟦{kind}{num}⟧"
        w, g = want[(kind, num)], got[(kind, num)]
        if w == 0:
            reasons.append(f"uses token {tok}, which is not in the sentence")
        elif g == 0:
            reasons.append(f"drops token {tok}")
        elif g != w:
            reasons.append(f"uses token {tok} {g} times instead of {w}")
    if BRACKET.search(TOKEN.sub("", candidate)):
        reasons.append("contains a broken token")
    reasons += _diff("number, date or code", Counter(atoms(_free(original))), Counter(atoms(_free(candidate))))
    reasons += _diff(
        "number word",
        Counter(w.lower() for w in _NUMBER_WORDS.findall(_free(original))),
        Counter(w.lower() for w in _NUMBER_WORDS.findall(_free(candidate))),
    )
    neg_o, neg_c = _count(_NEGATION, original), _count(_NEGATION, candidate)
    if neg_o != neg_c:
        reasons.append(f"{'adds' if neg_c > neg_o else 'drops'} a negation ({neg_o} before, {neg_c} after)")
    reasons += _diff("comparator", _classes(_COMPARATORS, original), _classes(_COMPARATORS, candidate))
    reasons += _diff("modal verb", _classes(_MODALS, original), _classes(_MODALS, candidate))
    terms_o, terms_c = clinical_terms(original), clinical_terms(candidate)
    reasons += [f"adds the clinical term '{t}'" for t in sorted(terms_c - terms_o)]
    reasons += [f"drops the clinical term '{t}'" for t in sorted(terms_o - terms_c)]
    n_o, n_c = _words(original), _words(candidate)
    low, high = LENGTH_MIN * n_o, max(LENGTH_MAX * n_o, n_o + 4 if n_o <= SHORT else 0)
    if not low <= n_c <= high:
        reasons.append(f"length {n_c} words is outside {low:g}-{high:g} for a draft of {n_o}")
    if len(_SENTENCE_BREAK.findall(candidate)) > len(_SENTENCE_BREAK.findall(original)):
        reasons.append("adds a sentence")
    if "\n" in candidate.strip():
        reasons.append("contains a line break")
    if _MARKUP.search(_free(candidate)) and not _MARKUP.search(_free(original)):
        reasons.append("contains markup, brackets or a link")
    if _count(_NECESSITY, candidate) > _count(_NECESSITY, original):
        reasons.append("adds an assertion of necessity or coverage")
    if _count(PROMISE, candidate) > _count(PROMISE, original):
        reasons.append("adds a guarantee or promise")
    return reasons


def judge(
    original: str, candidate: object, vault: Vault, sentences: list[Sentence], case: Case, kb: KnowledgeBase
) -> list[str]:
    """Everything a polished sentence must pass: the guard, then (unlocked) the validator's sentence rules.

    ``sentences`` are the letter's sentences that share this locked text; each keeps its own citations.
    """
    reasons = check(original, candidate)
    if reasons or not isinstance(candidate, str):
        return reasons
    text = " ".join(vault.unlock(candidate).split())
    header_atoms = set(atoms(header_text(case)))
    out: set[str] = set()
    for s in sentences:
        s = s.model_copy(update={"text": text})
        issues = check_sentence(s, case, kb, header_atoms) + template_text_issues([s], case)
        out.update(f"validator rule {i.rule}: {i.message}" for i in issues if i.level == "error")
    return sorted(out)
