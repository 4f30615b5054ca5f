"""Re-validating a letter after a person edited it, against the ledger written with it.

Each sentence of the ledger is looked for in the edited letter. A sentence found verbatim is unchanged.
The text left over is split into sentences, and each sentence not found is paired with the most similar
leftover sentence: that pair is an edit. What is left after pairing is new text, and a ledger sentence
with no pair was deleted. Then, with the rules numbered as in :mod:`lettergen.validation.rules`:

- an edit of the letter's identity (header lines, signature, references) must leave it as drafted: the
  patient, payer, codes, labels, diagnoses, dates and every reference entry come from the ledger (rule 4);
- an edit of any other sentence must say what the sentence said, by the same meaning check the polish
  guard applies to a model (:func:`lettergen.validation.meaning.compare`, with a person's allowances) (rule 3);
- new text may be courtesy or connective words; it may not carry a number, date, code or clinical term no
  source of the letter has, a promise, a placeholder or a clause addressed to a reviewer (rules 2, 6);
- edited and new text may not assert necessity for a code whose verdict is not met (rule 5) nor contradict
  the decision (rule 7);
- deleting a required element is an error (rule 4); deleting the only claim that supports a criterion or
  verdict the letter still states is an error (rule 1), any other deleted claim a warning;
- a claim found verbatim but moved away from the criterion it supports is an error (rule 1).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from lettergen.errors import LettergenError
from lettergen.letter.render import Sentence
from lettergen.validation.meaning import clinical_terms, compare, new_text_reasons

if TYPE_CHECKING:  # the edit check reads a ledger's fields; the ledger's module is of a later stage
    from lettergen.provenance.ledger import Ledger
from lettergen.validation.rules import REQUIRED, Issue, ValidationResult, atoms, consistency_issues, necessity_issues

# A sentence ends at . ! or ? before a capital, but not after an initial ("Sam R. Example") or a title.
_SPLIT = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\bal\.)\s+(?=[A-Z(\[])"
)
_MD_INLINE = re.compile(r"\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")
_MD_LEAD = re.compile(r"^\s*(?:#+\s*|[-*+]\s+|\d{1,3}\.\s+)")  # "2021. Updated" continues a wrapped line
_BLOCK = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|div|br|tr|td|th|table|thead|tbody|section|header|footer|blockquote|hr|title)\b[^>]*>",
    re.I,
)
_TAGS = re.compile(r"<[^>]+>")
_HEAD = re.compile(r"<head\b.*?</head>", re.S | re.I)  # a standalone HTML letter: title and print styles
_MARK = re.compile("\x00(\\d+)\x00")
_LIST_NUMBER = re.compile(r"^\(?\d{1,3}[.)]$")  # a criterion's or a list item's number, on its own
SIMILAR = 0.55
# The letter's identity: changed only by drafting again, never by editing the letter.
IDENTITY = ("header.", "signature.name", "signature.npi", "signature.organization", "reference.", "determination.")
_NAMES = ("header.patient", "header.payer", "header.organization", "header.requester", "signature.name")


def normalise(text: str, fmt: str) -> str:
    """The letter's words, one block (paragraph, heading, list item, header line) a line, markup removed.

    Block boundaries are kept so that a heading is never read as the start of the sentence under it;
    line breaks inside a paragraph (a reflowed markdown letter) are only spaces."""
    if fmt == "html":
        text = _HEAD.sub("\n", text)
        text = html.unescape(_TAGS.sub("", _BLOCK.sub("\n", text)))
        lines = text.splitlines()
    elif fmt == "docx":
        lines = text.splitlines()
    else:
        lines = _md_blocks(text)
    out = []
    for line in lines:
        if fmt != "html" and fmt != "docx":
            line = _MD_INLINE.sub("", _MD_LEAD.sub("", line))
        line = " ".join(line.split())
        if line:
            out.append(line)
    return "\n".join(out)


def _md_blocks(text: str) -> list[str]:
    # Markdown and plain text: a blank line, a heading, a list item or a hard line break (two trailing
    # spaces, as the header lines end) starts a block; any other line break is a soft wrap.
    blocks: list[str] = []
    hard = True
    for raw in text.replace("\r\n", "\n").split("\n"):
        starts = not raw.strip() or _MD_LEAD.match(raw) is not None or raw.lstrip().startswith(("#", "|"))
        if hard or starts or not blocks:
            blocks.append(raw)
        else:
            blocks[-1] += " " + raw
        hard = not raw.strip() or raw.endswith(("  ", "\\")) or raw.lstrip().startswith("#")
    return blocks


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Reading:
    """How the edited letter relates to the ledger's sentences."""

    found: list[int]  # ledger indices found verbatim, in the order they appear in the edited letter
    edited: list[tuple[int, str]]  # ledger index, the text it became
    deleted: list[int]
    new: list[str]
    new_fields: list[str]  # the field labels ("Patient:") that open a piece of new text


def _label_stripper(letter_type: str) -> re.Pattern[str] | None:
    """The fixed labels a letter of this type prints (templates/labels.yaml), at the start of a piece of
    leftover text: layout, not new text, and not part of an edited value ("Patient: Janet Q. Sample")."""
    from lettergen.letter.labels import load_labels
    from lettergen.letter.render import LETTER_TYPES, templates_dir

    try:
        words = load_labels(str(templates_dir()), LETTER_TYPES).allowed(
            letter_type, "txt"
        )  # txt prints some labels in capitals: both spellings
    except LettergenError:  # a data folder without labels: every leftover is judged as text
        return None
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"^(?:{alts})(?:\s+|$)") if alts else None


TokenPattern = Callable[[str], "re.Pattern[str] | None"]


def _read(
    body: str, sentences: list[Sentence], tokens: TokenPattern | None = None, labels: re.Pattern[str] | None = None
) -> _Reading:
    missing: list[int] = []
    # Longest first, so a short sentence cannot eat part of a longer one. A sentence lies within one block,
    # but a block's own line break (an address typed on two lines) is still the same sentence: looked up
    # across lines only when not found within one.
    for i in sorted(range(len(sentences)), key=lambda i: len(sentences[i].text), reverse=True):
        needle = _squash(sentences[i].text)
        at = body.find(needle) if needle else -1
        if needle and at < 0:
            at = body.replace("\n", " ").find(needle)
        if at >= 0:
            body = body[:at] + f"\x00{i}\x00" + body[at + len(needle) :]
        elif tokens is not None and (hit := _token_match(tokens, sentences[i].text, body)) is not None:
            body = body[: hit[0]] + f"\x00{i}\x00" + body[hit[1] :]
        else:
            missing.append(i)
    found = [int(m.group(1)) for m in _MARK.finditer(body)]
    # Leftover text, sentence by sentence, each remembering its block: a drafted sentence that itself holds
    # two ("...; 180 days. Counted from ...") is paired with as many consecutive pieces of one block.
    pieces: list[tuple[int, str]] = []
    fields: dict[int, str] = {}  # piece -> the field label it opened with
    for b, block in enumerate(chunk_block for chunk in _MARK.split(body)[::2] for chunk_block in chunk.split("\n")):
        for p in _SPLIT.split(block):
            p = p.strip()
            m = labels.match(p) if labels is not None else None
            if m:
                p = p[m.end() :].strip()
            if p and re.search(r"[A-Za-z]{3,}|\d", p) and not _LIST_NUMBER.match(p):
                if m and m.group(0).strip().endswith(":"):
                    fields[len(pieces)] = m.group(0).strip()
                pieces.append((b, p))
    spans: list[tuple[int, int]] = [(j, j + 1) for j in range(len(pieces))]
    lengths = {len(_SPLIT.split(sentences[i].text)) for i in missing} - {1}
    for k in lengths:
        spans += [(j, j + k) for j in range(len(pieces) - k + 1) if pieces[j][0] == pieces[j + k - 1][0]]
    text_of = {sp: " ".join(p for _, p in pieces[sp[0] : sp[1]]) for sp in spans}
    pairs = sorted(
        (
            (SequenceMatcher(None, sentences[i].text, text_of[sp], autojunk=False).ratio(), i, sp)
            for i in missing
            for sp in spans
            if sp[1] - sp[0] in (1, len(_SPLIT.split(sentences[i].text)))
        ),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    used_s: set[int] = set()
    used_p: set[int] = set()
    edited = []
    for ratio, i, sp in pairs:
        covered = set(range(*sp))
        if ratio < SIMILAR or i in used_s or covered & used_p:
            continue
        used_s.add(i)
        used_p |= covered
        edited.append((i, text_of[sp]))
    leftovers = [p for _, p in pieces]
    return _Reading(
        found=found,
        edited=sorted(edited),
        deleted=[i for i in missing if i not in used_s],
        new=[p for j, p in enumerate(leftovers) if j not in used_p],
        new_fields=[fields[j] for j in range(len(leftovers)) if j not in used_p and j in fields],
    )


def _moved(order: list[int]) -> set[int]:
    """The indices not on a longest increasing run of ``order``: the sentences a person moved."""
    if not order:
        return set()
    best: list[int] = []  # best[k]: position in order of the smallest tail of an increasing run of length k+1
    back: list[int] = [-1] * len(order)
    for pos, value in enumerate(order):
        lo, hi = 0, len(best)
        while lo < hi:
            mid = (lo + hi) // 2
            if order[best[mid]] < value:
                lo = mid + 1
            else:
                hi = mid
        back[pos] = best[lo - 1] if lo else -1
        if lo == len(best):
            best.append(pos)
        else:
            best[lo] = pos
    keep: set[int] = set()
    pos = best[-1]
    while pos >= 0:
        keep.add(order[pos])
        pos = back[pos]
    return set(order) - keep


def _group(sid: str) -> str | None:
    """The criterion a claim supports (``rationale.<code>.<criterion>``), its verdict (``verdict.<code>``), or the
    request for a code with no criteria on file that its documented rationale supports (``grounds.<code>``)."""
    parts = sid.split(".")
    if parts[0] == "rationale" and len(parts) >= 4 and parts[-1] != "criterion":
        return ".".join(parts[:3])
    if parts[0] == "verdict" and len(parts) == 2:
        return sid
    if parts[0] == "grounds" and len(parts) == 3:
        return ".".join(parts[:2])
    return None


def _heads(group: str, present: set[str]) -> list[str]:
    """The sentences still in the letter that state what ``group``'s claims support."""
    parts = group.split(".")
    if parts[0] == "rationale":
        head = f"{group}.criterion"
        return [head] if head in present else []
    code = parts[1]
    heads = (f"summary.{code}", f"determination.{code}") + ((f"verdict.{code}",) if parts[0] == "grounds" else ())
    return sorted(s for s in present if s in heads or s.startswith("request.ask"))


def validate_edited(letter_text: str, ledger: Ledger, tokens: TokenPattern | None = None) -> ValidationResult:
    """Check a person's edit of a letter against its ledger (see the module docstring).

    A redacted ledger (``--redact-ledger``) holds hash tokens where the letter holds identifiers: the caller
    puts back what it can (lettergen.provenance.redact.unredact) and passes ``tokens``, which gives for a
    sentence still holding tokens the pattern its text must match in the letter."""
    sentences = ledger.sentences
    reading = _read(normalise(letter_text, ledger.format), sentences, tokens, _label_stripper(ledger.letter_type))
    issues: list[Issue] = []
    names = [sentences[i].text for i in range(len(sentences)) if sentences[i].id in _NAMES]
    names = [n for n in dict.fromkeys(names) if len(n) >= 3]

    for i, new in reading.edited:
        s = sentences[i]
        if s.id.startswith(IDENTITY):
            issues.append(Issue(rule=4, sentence=s.id, message=f"edit changed the letter's identity: '{new}'"))
            continue
        reasons = compare(s.text, new, "person", keep=[n for n in names if n in s.text])
        if reasons:
            issues.append(
                Issue(rule=3, sentence=s.id, message=f"edit changes what it says ({'; '.join(reasons)}): '{new}'")
            )

    present = {sentences[i].id for i in reading.found} | {sentences[i].id for i, _ in reading.edited}
    for need in REQUIRED.get(ledger.letter_type, ()):
        if need in {s.id for s in sentences} and need not in present:
            issues.append(Issue(rule=4, sentence=need, message=f"a required element was deleted ('{need}')"))
    for i in reading.deleted:
        s = sentences[i]
        if s.kind != "claim" or s.id in REQUIRED.get(ledger.letter_type, ()):
            continue
        group = _group(s.id)
        others = group is not None and any(_group(p) == group for p in present)
        heads = _heads(group, present) if group is not None and not others else []
        if heads:
            issues.append(
                Issue(
                    rule=1,
                    sentence=s.id,
                    message=f"claim was deleted, and it was the only support of '{heads[0]}', which the letter "
                    "still states",
                )
            )
        else:
            issues.append(Issue(rule=1, level="warning", sentence=s.id, message="claim was deleted from the letter"))

    for i in sorted(_moved(reading.found)):
        s = sentences[i]
        if s.kind == "claim":
            issues.append(
                Issue(rule=1, sentence=s.id, message="claim was moved away from the criterion or verdict it supports")
            )

    known = set(atoms(ledger.header))
    terms: set[str] = set(clinical_terms(ledger.header))
    for s in sentences:
        known.update(atoms(s.text))
        terms |= clinical_terms(s.text)
    for label in reading.new_fields:
        issues.append(Issue(rule=4, message=f"edit added a '{label}' line to the letter's identity block"))
    for text in reading.new:
        for reason in new_text_reasons(text, known, frozenset(terms)):
            issues.append(Issue(rule=2 if "source" in reason else 6, message=f"new text {reason}: '{text}'"))

    changed = [Sentence(id=sentences[i].id, text=new, kind=sentences[i].kind) for i, new in reading.edited]
    added = [Sentence(id=f"new.{n}", text=t, kind="structural") for n, t in enumerate(reading.new, 1)]
    issues += necessity_issues(changed + added, ledger.decision)
    issues += consistency_issues(
        [sentences[i] for i in reading.found] + changed + added, ledger.decision, only=changed + added
    )
    return ValidationResult(ok=not any(i.level == "error" for i in issues), checked=len(sentences), issues=issues)


def _token_match(tokens: TokenPattern, text: str, body: str) -> tuple[int, int] | None:
    pat = tokens(text)
    m = pat.search(body) if pat is not None else None
    return (m.start(), m.end()) if m else None
