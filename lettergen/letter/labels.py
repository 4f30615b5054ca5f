"""What a template may print outside a recorded sentence: headings and field labels from a fixed list.

Every sentence of a letter is recorded (``say``, ``S``, ``heading``) and so checked by the validator. Whatever a
template prints between them is layout, and layout holds no claim: once the placeholders are taken out and the
format's markup is stripped (md: heading hashes, bold and emphasis marks, list bullets and numbers, table pipes,
rules; txt: the underlines of headings, bullets and numbers; html: tags, the ``<head>``, ``<style>`` and
``<script>`` blocks, comments, entities; in every format a "|" separates two pieces), every line and every
piece between two placeholders must be a label
of ``templates/labels.yaml`` for the letter's type (``common`` or the type's own list), or hold no letter or
digit at all. Anything else fails the render with :class:`~lettergen.errors.DataError` naming the template
file and line where the text is written (found by searching the templates' sources), or the template alone
when the text is not in any source (a value printed raw). The message quotes template text only, never a value.

The check is memoised per data folder, letter type and format: a line of layout that passed once (on its own)
passes again without being stripped, so a letter whose every layout line is known costs a split at its
placeholders and a set lookup per line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from lettergen.errors import DataError
from lettergen.letter.layout import CLOSE, OPEN
from lettergen.yamlio import load_yaml_mapping

LABELS_FILE = "labels.yaml"
_WHERE = f"templates/{LABELS_FILE}"

# html: blocks whose content is never shown as the letter's text, then tags. Inline tags go without a break (a
# label may be bold: <strong>Re:</strong>), every other tag ends a segment.
_HTML_HIDDEN = re.compile(r"<!--.*?-->|<!DOCTYPE[^>]*>|<(head|style|script|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_INLINE_TAG = re.compile(r"</?(?:strong|b|em|i|u|span|small|sup|sub|code|abbr|mark)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^<>]*>")

# Markup at the start of a line: md heading hashes, a blockquote mark, a list bullet, a number ("1." of a list,
# of a criterion, of a reference).
_LINE_START = re.compile(r"^(?:(?:#{1,6}(?=\s|$)|>|[-*+•](?=\s)|\d{1,3}[.)](?=\s|$))\s*)+")
_EMPHASIS = re.compile(r"\*\*|__|[*_`]")
_WORDY = re.compile(r"[^\W_]")  # a letter or a digit: what makes a segment more than markup


class Labels:
    """The labels of ``templates/labels.yaml``: ``common`` and one list per letter type."""

    def __init__(self, by_type: dict[str, frozenset[str]]) -> None:
        self.by_type = by_type

    def allowed(self, letter_type: str, fmt: str) -> frozenset[str]:
        return _allowed(self, letter_type, fmt)


@cache
def _allowed(labels: Labels, letter_type: str, fmt: str) -> frozenset[str]:
    words = labels.by_type.get("common", frozenset()) | labels.by_type.get(letter_type, frozenset())
    if fmt == "txt":  # txt capitalises the first two heading levels
        words |= {w.upper() for w in words}
    return frozenset(words)


def parse_labels(data: object, keys: Iterable[str]) -> Labels:
    """Check the mapping of ``labels.yaml``: only the known keys, each a list of distinct one-line labels."""
    known = ("common", *keys)
    if not isinstance(data, dict):
        raise DataError(_WHERE, "", "must hold a mapping at the top level")
    by_type: dict[str, frozenset[str]] = {}
    for key, value in data.items():
        if key not in known:
            raise DataError(_WHERE, str(key), f"unknown key (allowed: {', '.join(known)})")
        if not isinstance(value, list):
            raise DataError(_WHERE, key, "must be a list of labels")
        seen: set[str] = set()
        for i, label in enumerate(value):
            field = f"{key}[{i}]"
            if not isinstance(label, str) or not label.strip():
                raise DataError(_WHERE, field, "a label must be a non-empty string")
            if label != label.strip() or "\n" in label or OPEN in label or CLOSE in label or "|" in label:
                raise DataError(_WHERE, field, "a label is one line without surrounding spaces or '|'")
            if not _WORDY.search(label):
                raise DataError(_WHERE, field, "a label without a letter or digit is markup: leave it out")
            if label in seen:
                raise DataError(_WHERE, field, f"'{label}' is listed twice")
            seen.add(label)
        by_type[key] = frozenset(seen)
    return Labels(by_type)


@cache
def load_labels(root: str, keys: tuple[str, ...]) -> Labels:
    """The labels of ``<root>/labels.yaml`` (the templates folder), read and checked once per folder."""

    def error(_file: str, field: str, problem: str) -> DataError:
        return DataError(_WHERE, field, problem)

    return parse_labels(load_yaml_mapping(Path(root) / LABELS_FILE, error), keys)


def residue(skeleton: str) -> str:
    """A skeleton's layout: every placeholder (OPEN, a non-empty id, CLOSE) replaced by a line break; a stray mark
    stays, as :func:`lettergen.letter.render.assemble` keeps it. Split as assemble splits, which costs half a regex."""
    pieces = skeleton.split(OPEN)
    out = [pieces[0]]
    for part in pieces[1:]:
        sid, close, rest = part.partition(CLOSE)
        out.append(rest if close and sid else OPEN + part)
    return "\n".join(out)


def _hide(layout: str) -> str:
    """html without its comments, doctype and <head>, <style>, <script> and <title> blocks; looked for only where
    one may be (a letter's body has none, the standalone document one head)."""
    low = layout.lower()
    if "<!" in low or "<head" in low or "<style" in low or "<script" in low or "<title" in low:
        return _HTML_HIDDEN.sub("\n", layout)
    return layout


def segments(layout: str, fmt: str) -> list[str]:
    """The pieces of text in a skeleton's layout (see :func:`residue`) once the format's markup is stripped,
    in order; pieces without a letter or digit (markup, punctuation) are left out."""
    if fmt == "html":
        layout = _TAG.sub("\n", _INLINE_TAG.sub("", _hide(layout)))
    out = []
    for line in layout.split("\n"):
        if fmt == "html":
            line = html.unescape(line)
        elif fmt == "md":
            line = _EMPHASIS.sub("", line)
        for piece in line.split("|"):  # a table's cells; header.contact's "|" is inside its sentence
            piece = _LINE_START.sub("", piece.strip()).strip()
            if _WORDY.search(piece):
                out.append(piece)
    return out


# Layout lines that passed on their own, per (templates folder, letter type, format). A line that passes on its
# own passes wherever it stands: the whole-layout stripping only removes more (an html block or a tag across
# lines). Bounded: started again when full.
_KNOWN: dict[tuple[str, str, str], set[str]] = {}
_KNOWN_MAX = 4096


def check_layout(skeleton: str, *, root: str, template: str, letter_type: str, fmt: str, labels: Labels) -> None:
    """Raise DataError unless every piece of the skeleton's text outside a placeholder is an allowed label."""
    layout = residue(skeleton)
    if fmt == "html":  # what is never shown goes first: a line inside <style> is judged with its context
        layout = _hide(layout)
    lines = layout.split("\n")
    known = _KNOWN.setdefault((root, letter_type, fmt), set())
    if known.issuperset(lines):
        return
    new = set(lines) - known
    allowed = labels.allowed(letter_type, fmt)
    for piece in segments(layout, fmt):
        if piece not in allowed:
            raise _unlabelled(piece, root, template, letter_type)
    if len(known) + len(new) > _KNOWN_MAX:
        known = _KNOWN[(root, letter_type, fmt)] = set()
    known.update(line for line in new if all(p in allowed for p in segments(line, fmt)))


def _unlabelled(piece: str, root: str, template: str, letter_type: str) -> DataError:
    fix = f"record it (say, S or heading) or add it to {_WHERE} under '{letter_type}'"
    found = find_in_sources(piece, root, template)
    if found is None:  # not template text: a value printed outside a sentence. Its words are data, never quoted.
        return DataError(
            f"templates/{template}",
            "",
            f"a value is printed outside a recorded sentence (text in no template's source, and not a label "
            f"allowed in {letter_type} letters): record it with S or heading",
        )
    name, line, whole = found
    # Quoted only when the whole piece is written in the template: then it is template text, not a value.
    what = f"'{piece[:80]}'" if whole else "text that starts as written here"
    return DataError(
        f"templates/{name}:{line}",
        "",
        f"{what} is printed outside a recorded sentence and is not a label allowed in {letter_type} letters: {fix}",
    )


def find_in_sources(piece: str, root: str, template: str) -> tuple[str, int, bool] | None:
    """Where the text ``piece`` is written in the templates' sources: (file, line, whether the whole piece is
    written there), the letter's own template first. The whole piece is looked for, then shorter and shorter
    runs of its first words, down to two (a piece may join template text and a value, or template lines that a
    paragraph joined). Words match whole words, whatever their case (txt capitalises headings)."""
    sources = _sources(root)
    order = sorted(sources, key=lambda name: (name != template, name))
    words = piece.split()
    for n in range(len(words), min(len(words), 2) - 1, -1):
        run = " ".join(words[:n])
        needles = {run.casefold(), html.escape(run, quote=False).casefold()}
        pattern = re.compile("|".join(rf"(?<!\w){re.escape(x)}(?!\w)" for x in sorted(needles)))
        for name in order:
            for number, text in enumerate(sources[name], start=1):
                if pattern.search(text):
                    return name, number, n == len(words)
    return None


_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def _sources(root: str) -> dict[str, list[str]]:
    """Every template's lines, casefolded, with Jinja comments blanked (their line breaks kept). Read when a
    render fails, not memoised: a failure is rare and the files may have been fixed since."""
    out = {}
    for path in sorted(Path(root).glob("*.j2")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        out[path.name] = [" ".join(line.split()).casefold() for line in text.split("\n")]
    return out
