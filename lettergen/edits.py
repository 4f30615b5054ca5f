"""Re-validating a letter after a person edited it, against the ledger written with it.

Each sentence of the ledger is looked for in the edited letter. A sentence found verbatim is
unchanged. The text left over is split into sentences and each missing claim is paired with the
most similar leftover sentence: that pair is an edit, and an edit may reword but must keep every
number, date and code and every citation marker. Leftover text that pairs with nothing is new;
new text may not carry a number or code that the letter's sources do not.
"""

from __future__ import annotations

import html
import re
from difflib import SequenceMatcher

from lettergen.ledger import Ledger
from lettergen.validate import PLACEHOLDER, PROMISE, Issue, ValidationResult, atoms, markers

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_MD = re.compile(r"\*\*|__|^#+\s*|^\s*[-*]\s+|^\s*\d+\.\s+", re.M)
_TAGS = re.compile(r"<[^>]+>")
_HEAD = re.compile(r"<head\b.*?</head>", re.S | re.I)  # a standalone HTML letter: title and print styles
_CUT = "\x00"
SIMILAR = 0.55


def normalise(text: str, fmt: str) -> str:
    if fmt == "html":
        text = html.unescape(_TAGS.sub("\n", _HEAD.sub("\n", text)))
    text = _MD.sub(" ", text)
    return " ".join(text.split())


def _squash(text: str) -> str:
    return " ".join(text.split())


def validate_edited(letter_text: str, ledger: Ledger) -> ValidationResult:
    if ledger.redacted:
        from lettergen.redact import unredact

        ledger = unredact(ledger, letter_text)
    body = normalise(letter_text, ledger.format)
    issues: list[Issue] = []
    missing = []
    # Longest first, so a short sentence cannot eat part of a longer one.
    for s in sorted(ledger.sentences, key=lambda s: len(s.text), reverse=True):
        needle = _squash(s.text)
        if needle and needle in body:
            body = body.replace(needle, _CUT, 1)
        elif ledger.redacted and (found := _redacted_match(s.text, body)) is not None:
            body = body[: found[0]] + _CUT + body[found[1] :]
        else:
            missing.append(s)
    leftovers = [p.strip() for chunk in body.split(_CUT) for p in _SPLIT.split(chunk) if p.strip()]
    leftovers = [p for p in leftovers if re.search(r"[A-Za-z]{3,}", p)]
    pairs = sorted(
        (
            (SequenceMatcher(None, s.text, p, autojunk=False).ratio(), i, j)
            for i, s in enumerate(missing)
            for j, p in enumerate(leftovers)
        ),
        reverse=True,
    )
    used_s: set[int] = set()
    used_p: set[int] = set()
    edited = []
    for ratio, i, j in pairs:
        if ratio < SIMILAR or i in used_s or j in used_p:
            continue
        used_s.add(i)
        used_p.add(j)
        edited.append((missing[i], leftovers[j]))
    for s, new in edited:
        if s.kind != "claim":
            continue
        before, after = sorted(atoms(s.text)), sorted(atoms(new))
        if before != after:
            added = [a.split(":", 1)[1] for a in after if a not in before]
            dropped = [a.split(":", 1)[1] for a in before if a not in after]
            what = "; ".join(
                x
                for x in (
                    f"added {', '.join(added)}" if added else "",
                    f"removed {', '.join(dropped)}" if dropped else "",
                )
                if x
            )
            issues.append(
                Issue(rule=2, sentence=s.id, message=f"edit changed a number, date or code ({what}): '{new}'")
            )
        lost = [m for m in markers(s.text) if m not in markers(new)]
        if lost:
            issues.append(Issue(rule=1, sentence=s.id, message=f"edit removed citation {', '.join(lost)}: '{new}'"))
    for i, s in enumerate(missing):
        if i not in used_s and s.kind == "claim":
            issues.append(Issue(rule=1, level="warning", sentence=s.id, message="claim was deleted from the letter"))
    known = set(atoms(ledger.header))
    for s in ledger.sentences:
        known.update(atoms(s.text))
    for j, p in enumerate(leftovers):
        if j in used_p:
            continue
        strange = [a.split(":", 1)[1] for a in atoms(p) if a not in known]
        if strange:
            issues.append(
                Issue(
                    rule=2,
                    sentence=None,
                    message=f"new text carries {', '.join(strange)}, which no source supports: '{p}'",
                )
            )
    issues += _rule6_on_new_text(
        [new for _, new in edited] + [p for j, p in enumerate(leftovers) if j not in used_p], ledger
    )
    return ValidationResult(
        ok=not any(i.level == "error" for i in issues), checked=len(ledger.sentences), issues=issues
    )


def _redacted_match(text: str, body: str) -> tuple[int, int] | None:
    # A --redact-ledger ledger holds hash tokens where the letter holds identifiers.
    from lettergen.redact import pattern_for

    pat = pattern_for(text)
    m = pat.search(body) if pat is not None else None
    return (m.start(), m.end()) if m else None


def _rule6_on_new_text(texts: list[str], ledger: Ledger) -> list[Issue]:
    # Case text may legitimately hold braces (it prints as typed); those already stood in the draft.
    drafted = " ".join(s.text for s in ledger.sentences)
    out = []
    for t in texts:
        m = PROMISE.search(t)
        if m:
            out.append(Issue(rule=6, message=f"edit makes a guarantee or absolute promise ('{m.group(0)}'): '{t}'"))
        p = PLACEHOLDER.search(t)
        if p and p.group(0) not in drafted:
            out.append(Issue(rule=6, message=f"edit leaves an unfilled placeholder: '{t}'"))
    return out
