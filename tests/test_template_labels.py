"""Templates cannot say anything unchecked: outside a recorded sentence, a template prints only the labels of
templates/labels.yaml for the letter's type (issue 19, point 5)."""

from __future__ import annotations

import html
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, ROOT

from lettergen import api
from lettergen.case.model import case_from_mapping
from lettergen.errors import DataError, NothingToDraft, UsageError
from lettergen.letter import labels
from lettergen.letter.layout import CLOSE, OPEN
from lettergen.letter.render import LETTER_TYPES, TEXT_FORMATS, Letter
from lettergen.outputs.documents import document_body, html_document
from lettergen.polish.lock import NOT_PROSE

DAY = date(2026, 12, 1)
LABELS: dict[str, list[str]] = yaml.safe_load((ROOT / "templates" / "labels.yaml").read_text())
# Every example case: the examples (one of them also as a FHIR Bundle) and the clinical vignettes.
CASE_FILES = [
    *sorted(EXAMPLES.glob("[a-z]*.yaml")),
    *sorted(EXAMPLES.glob("[a-z]*.fhir.json")),
    *sorted((EXAMPLES / "vignettes" / "cases").glob("*.yaml")),
]
VOICES = {"appeal": ("physician", "patient"), "external_review": ("physician", "patient")}
ERISA = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"
CATEGORIES = ("not_medically_necessary", "experimental_investigational", "missing_documentation", "coding")


def _allowed(letter_type: str, fmt: str) -> set[str]:
    words = set(LABELS.get("common", [])) | set(LABELS.get(letter_type, []))
    return words | {w.upper() for w in words} if fmt == "txt" else words


def _leftover_words(text: str, fmt: str, allowed: set[str]) -> list[str]:
    """The words of a skeleton (or document) outside its placeholders that are not part of an allowed label,
    found without lettergen.letter.labels: tags and the head go, then every allowed label, longest first."""
    text = re.sub(f"{OPEN}[^{CLOSE}]*{CLOSE}", "\n", text)
    if fmt == "html":
        text = re.sub(r"<head>.*?</head>", "\n", text, flags=re.S)
        text = html.unescape(re.sub(r"<[^>]*>", "\n", text))
    for label in sorted(allowed, key=len, reverse=True):
        text = text.replace(label, "\n")
    return re.findall(r"[^\W\d_]+", text)  # digits may stay: "1." numbers a list


def _render_all(case: Any, name: str) -> list[str]:
    """Render the case in every letter type, voice and text format (and the html document around it); assert
    each layout holds only allowed labels. Returns the templates rendered."""
    seen = []
    for letter_type in LETTER_TYPES:
        for voice in VOICES.get(letter_type, ("physician",)):
            for fmt in TEXT_FORMATS:
                try:
                    staged = api.stage(case, letter_type=letter_type, fmt=fmt, voice=voice, letter_date=DAY)
                except NothingToDraft:  # nothing met: the letter type has nothing to draft (exit 4)
                    continue
                except UsageError as exc:  # no denial to answer: not a letter this case can have
                    assert "no denial block" in str(exc), exc
                    continue
                letter: Letter = staged.letter
                where = (name, letter_type, voice, fmt)
                allowed = _allowed(letter_type, fmt)
                assert _leftover_words(letter.skeleton, fmt, allowed) == [], where
                assert set(labels.segments(labels.residue(letter.skeleton), fmt)) <= allowed, where
                seen.append(letter.template)
                if fmt == "html":  # the standalone document (html, and the PDF's source) around the letter
                    document = html_document(letter, staged.loaded.case, DAY)
                    assert _leftover_words(document.replace(document_body(letter), "\n"), fmt, allowed) == [], where
    return seen


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_every_template_in_every_format_prints_only_allowed_labels(path: Path) -> None:
    _render_all(api.load_case(path), path.stem)


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_rebuttal_prints_only_allowed_labels(category: str) -> None:
    # Each denial category has its own rebuttal section and heading; no example denies on every category.
    data = yaml.safe_load(ERISA.read_text())
    data["denial"]["category"] = category
    _render_all(case_from_mapping(data, "case.yaml"), category)


def test_every_shipped_letter_template_is_rendered() -> None:
    # The partials are included by the letter templates and _document.html.j2 wraps every html letter: rendering
    # every letter type renders every shipped template.
    letters = {p.name for p in (ROOT / "templates").glob("[a-z]*.j2")}
    assert letters == {f"{t}.j2" for t in LETTER_TYPES}
    rendered = _render_all(api.load_case(CHORDOMA), "chordoma") + _render_all(api.load_case(ERISA), "erisa")
    assert set(rendered) == letters


def test_every_label_is_printed_by_some_template() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "templates").glob("*.j2"))
    unused = [w for words in LABELS.values() for w in words if w not in sources]
    assert unused == []


def test_headings_of_codes_are_recorded_and_never_polished() -> None:
    d = api.stage(api.load_case(CHORDOMA), letter_type="determination", fmt="txt", letter_date=DAY)
    headings = {s.id: s.text for s in d.letter.sentences if s.id.startswith("header.heading.")}
    assert set(headings) == {"header.heading.20206", "header.heading.38505"}
    assert headings["header.heading.20206"].startswith("RATIONALE FOR CPT 20206: ")  # as txt prints it
    assert "header.heading.".startswith(NOT_PROSE)


# --- a copy of the data folder with one template or labels.yaml changed ---------------------------------------


def _data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    for d in ("citations", "criteria", "templates", "prompts"):
        if (ROOT / d).is_dir():
            shutil.copytree(ROOT / d, root / d)
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    return root


def _insert(path: Path, before: str, line: str) -> int:
    """Insert ``line`` before the first line that starts with ``before``; its line number."""
    lines = path.read_text().split("\n")
    at = next(i for i, text in enumerate(lines) if text.startswith(before))
    lines.insert(at, line)
    path.write_text("\n".join(lines))
    return at + 1


GUARANTEE = "We guarantee that 38505 is medically necessary."

# (template, insert before the line starting with, inserted line, letter type, formats, the error, or None: passes)
INSERTED = [
    ("lmn.j2", "{% set history", GUARANTEE, "lmn", TEXT_FORMATS, "templates/lmn.j2:{line}: 'We guarantee"),
    ("lmn.j2", '{{ "Request"', '{{ "We guarantee it" | h(2) }}', "lmn", TEXT_FORMATS, "templates/lmn.j2:{line}"),
    ("lmn.j2", "{% set history", '{{ "Approved:" | bold }}', "lmn", TEXT_FORMATS, "templates/lmn.j2:{line}"),
    ("_header.j2", "{% filter lines %}", "Approved in advance.", "lmn", ("md",), "templates/_header.j2:{line}"),
    # a label of another letter type: Timeliness heads an appeal's deadline, not a prior authorization
    ("lmn.j2", "{% set history", '{{ "Timeliness" | h(2) }}', "lmn", TEXT_FORMATS, "templates/lmn.j2:{line}"),
    ("determination.j2", '{{ "Summary"', '{{ "Clinical history" | h(2) }}', "determination", ("txt",), ":{line}"),
    # a value printed raw: the template is named, the value never
    ("lmn.j2", "{% set history", "{{ case.patient.name }}", "lmn", TEXT_FORMATS, "templates/lmn.j2: a value"),
    # allowed: a label of the letter's type, markup alone
    ("lmn.j2", "{% set history", '{{ "Summary" | h(2) }}', "lmn", TEXT_FORMATS, None),
    ("lmn.j2", "{% set history", "---", "lmn", TEXT_FORMATS, None),
]


@pytest.mark.parametrize(("template", "before", "line", "letter_type", "formats", "error"), INSERTED)
def test_text_outside_a_sentence_fails_with_template_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    before: str,
    line: str,
    letter_type: str,
    formats: tuple[str, ...],
    error: str | None,
) -> None:
    root = _data_copy(tmp_path, monkeypatch)
    number = _insert(root / "templates" / template, before, line)
    loaded = api.load_case(CHORDOMA)
    for fmt in formats:
        if error is None:
            assert api.draft(loaded, letter_type=letter_type, fmt=fmt, letter_date=DAY).validation.ok
            continue
        with pytest.raises(DataError) as caught:
            api.stage(loaded, letter_type=letter_type, fmt=fmt, letter_date=DAY)
        message = str(caught.value)
        assert error.format(line=number) in message, (fmt, message)
        assert "Sample" not in message  # the patient's name is never quoted


def test_the_unchecked_line_failed_before_nothing_saw_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The example: the line used to give a letter that validated ok. Now the CLI stops with exit 2.
    from conftest import run_cli

    root = _data_copy(tmp_path, monkeypatch)
    number = _insert(root / "templates" / "lmn.j2", "{% set history", GUARANTEE)
    code, _, err = run_cli("draft", str(CHORDOMA), "-o", str(tmp_path / "out"))
    assert code == 2 and f"templates/lmn.j2:{number}:" in err and GUARANTEE in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_the_document_around_an_html_letter_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _data_copy(tmp_path, monkeypatch)
    number = _insert(root / "templates" / "_document.html.j2", "</main>", "<p>Approved in advance.</p>")
    with pytest.raises(DataError, match=rf"templates/_document\.html\.j2:{number}: 'Approved in advance\.'"):
        api.draft(api.load_case(CHORDOMA), fmt="html", letter_date=DAY)


def test_a_label_added_to_the_list_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _data_copy(tmp_path, monkeypatch)
    _insert(root / "templates" / "lmn.j2", "{% set history", '{{ "Approved in advance" | h(2) }}')
    listed = yaml.safe_load((root / "templates" / "labels.yaml").read_text())
    listed["lmn"].append("Approved in advance")
    (root / "templates" / "labels.yaml").write_text(yaml.safe_dump(listed))
    for fmt in TEXT_FORMATS:
        d = api.draft(api.load_case(CHORDOMA), fmt=fmt, letter_date=DAY)
        assert d.validation.ok and "APPROVED IN ADVANCE" in d.text.upper()


# --- labels.yaml itself --------------------------------------------------------------------------------------

BAD_LABELS = [
    ({"common": ["Re:"], "lnm": ["Summary"]}, "lnm: unknown key"),
    ({"common": ["Re:"], "appeals": ["Request"]}, "appeals: unknown key"),
    ({"lmn": "Summary"}, "lmn: must be a list"),
    ({"lmn": ["Summary", "Summary"]}, "lmn[1]: 'Summary' is listed twice"),
    ({"lmn": [""]}, "lmn[0]: a label must be a non-empty string"),
    ({"lmn": [3]}, "lmn[0]: a label must be a non-empty string"),
    ({"lmn": [" Summary"]}, "lmn[0]: a label is one line"),
    ({"lmn": ["A | B"]}, "lmn[0]: a label is one line"),
    ({"lmn": ["---"]}, "lmn[0]: a label without a letter or digit"),
    (["Summary"], "must hold a mapping"),
]


@pytest.mark.parametrize(("data", "fragment"), BAD_LABELS)
def test_bad_labels_are_rejected(data: Any, fragment: str) -> None:
    with pytest.raises(DataError, match=re.escape(fragment)) as caught:
        labels.parse_labels(data, LETTER_TYPES)
    assert str(caught.value).startswith("templates/labels.yaml: ")


def test_the_shipped_labels_have_every_key_and_no_other() -> None:
    assert set(LABELS) == {"common", *LETTER_TYPES}
    labels.parse_labels(LABELS, LETTER_TYPES)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda p: p.write_text(p.read_text() + "\nlnm:\n  - Summary\n"), "templates/labels.yaml: lnm: unknown key"),
        (lambda p: p.unlink(), "templates/labels.yaml: file not found"),
        (lambda p: p.write_text("lmn: [Summary\n"), "templates/labels.yaml: is not valid YAML"),
    ],
)
def test_a_broken_labels_file_fails_the_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any, fragment: str
) -> None:
    root = _data_copy(tmp_path, monkeypatch)
    change(root / "templates" / "labels.yaml")
    with pytest.raises(DataError, match=re.escape(fragment)):
        api.stage(api.load_case(CHORDOMA), fmt="md", letter_date=DAY)
