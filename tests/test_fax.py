"""The PDF as a fax machine needs it (issue 22, point 2): a continuation header on pages 2 and on that a 204x98
dpi black-and-white fax still prints, no "Date: ____" line on a dated letter, DOIs and URLs as links, and the
optional fax cover page."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api
from lettergen.knowledge.store import load_kb
from lettergen.letter.layout import linked
from lettergen.letter.render import LETTER_TYPES
from lettergen.outputs.documents import html_document
from lettergen.polish.lock import is_prose

DATE = "2026-11-21"
DAY = date(2026, 11, 21)
ERISA = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"
MEDICARE = EXAMPLES / "appeal-medicare-redetermination-sacral-biopsy.yaml"
LETTER_HEIGHT = 792  # points


def _pdf_stack() -> None:
    pytest.importorskip("weasyprint", exc_type=ImportError)
    pytest.importorskip("pypdf")
    pytest.importorskip("pypdfium2")


def _draft_pdf(out: Path, case: Path, *extra: str) -> Path:
    code, stdout, err = run_cli("draft", str(case), "--format", "pdf", "--date", DATE, "-o", str(out), *extra)
    assert code == 0, err
    return Path(stdout.splitlines()[0].removeprefix("wrote "))


def _text(pdf: Path, index: int) -> str:
    from pypdf import PdfReader

    return " ".join((PdfReader(pdf).pages[index].extract_text() or "").split())


def _where(pdf: Path, index: int, words: str) -> list[float]:
    """The heights (points from the bottom of the page) at which ``words`` are printed on a page."""
    import pypdfium2 as pdfium

    text = pdfium.PdfDocument(str(pdf))[index].get_textpage()
    search = text.search(words)
    found = []
    while (hit := search.get_next()) is not None:
        found.append(text.get_charbox(hit[0])[1])
    return found


@pytest.fixture(scope="module")
def lmn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _pdf_stack()
    return _draft_pdf(tmp_path_factory.mktemp("lmn"), CHORDOMA)


# (case, letter type, what the letter's header gives as the patient's id) for letters of two pages or more
CONTINUED = [
    (CHORDOMA, "lmn", "Member ID: XYZ000000000"),
    (CHORDOMA, "determination", "Member ID: XYZ000000000"),
    (MEDICARE, "appeal", "Medicare number: "),
]


@pytest.mark.parametrize(("case", "letter_type", "identifier"), CONTINUED, ids=lambda v: getattr(v, "stem", v))
def test_pages_after_the_first_carry_the_continuation_header(
    tmp_path: Path, case: Path, letter_type: str, identifier: str
) -> None:
    _pdf_stack()
    from pypdf import PdfReader

    pdf = _draft_pdf(tmp_path, case, "--type", letter_type)
    pages = len(PdfReader(pdf).pages)
    assert pages >= 2
    loaded = api.load_case(case).case
    birth = loaded.patient.birth_date.strftime("%m/%d/%Y")
    for index in range(1, pages):
        text = _text(pdf, index)
        header = f"Patient: {loaded.patient.name} Date of birth: {birth} {identifier}"
        assert header in text and f"Page {index + 1} of {pages}" in text, (index, text[-300:])
        assert all(y > LETTER_HEIGHT - 70 for y in _where(pdf, index, f"Page {index + 1} of {pages}"))
    # The first page has its letterhead instead: its page number is at the foot, and no header repeats the patient.
    assert all(y < 60 for y in _where(pdf, 0, f"Page 1 of {pages}"))
    assert all(y < LETTER_HEIGHT - 120 for y in _where(pdf, 0, "Date of birth:"))


def _one_bit_fax(pdf: Path, index: int, dpi: tuple[int, int]) -> Any:
    """A page as a fax sends it: rendered at ``dpi`` (horizontal, vertical), then thresholded to black and white."""
    import pypdfium2 as pdfium
    from PIL import Image

    x, y = dpi
    image = pdfium.PdfDocument(str(pdf))[index].render(scale=x / 72, grayscale=True).to_pil().convert("L")
    width, height = image.size
    image = image.resize((width, round(height * y / x)), Image.Resampling.BOX)  # the coarse vertical lines
    return image.point(lambda v: 0 if v < 128 else 255).convert("1")


def _header_ink(image: Any, dpi_y: int) -> tuple[list[int], list[int], int]:
    """The rows and columns of the top margin (above 24 mm, where the letter's text starts) that hold black
    pixels, leaving out the rule (a row black over half the width), and the count of black pixels in them."""
    width = image.size[0]
    band = round(24 / 25.4 * dpi_y)
    pixels = image.load()
    rows, columns, ink = [], set(), 0
    for row in range(band):
        black = [col for col in range(width) if pixels[col, row] == 0]
        if len(black) > width / 2:  # the rule under the header
            continue
        if black:
            rows.append(row)
            columns.update(black)
            ink += len(black)
    return rows, sorted(columns), ink


def test_the_continuation_header_survives_a_204x98_dpi_black_and_white_fax(lmn: Path) -> None:
    pytest.importorskip("PIL")
    fax = _one_bit_fax(lmn, 1, (204, 98))
    assert fax.size == (round(8.5 * 204), 11 * 98)
    rows, columns, ink = _header_ink(fax, 98)
    # Text, not specks: a line at least 9 fax lines tall (the 9.5 pt capitals and the descenders), at the left
    # (the patient) and at the right (the page number).
    assert rows and rows[-1] - rows[0] + 1 >= 9, rows
    width = fax.size[0]
    assert columns[0] < 0.2 * width and columns[-1] > 0.8 * width
    # Nothing of it fades at the fax's resolution: it keeps the ink of the same page sent in fine mode twice
    # over (a light grey would lose its strokes to the threshold first).
    fine = _one_bit_fax(lmn, 1, (408, 196))
    _, _, fine_ink = _header_ink(fine, 196)
    assert ink >= 0.6 * fine_ink / 4, (ink, fine_ink)
    # And the words are there to read: the PDF's text of page 2.
    text = _text(lmn, 1)
    assert "Jane Q. Sample" in text and "Page 2 of" in text


# Every letter type and voice in the text formats: the header dates each one, so no "Date: ____" line.
DATED = [
    (CHORDOMA, "lmn", "physician"),
    (CHORDOMA, "determination", "physician"),
    (ERISA, "appeal", "physician"),
    (ERISA, "appeal", "patient"),
    (ERISA, "external_review", "physician"),
    (ERISA, "external_review", "patient"),
]


@pytest.mark.parametrize(("case", "letter_type", "voice"), DATED, ids=lambda v: getattr(v, "stem", v))
@pytest.mark.parametrize("fmt", ["md", "txt", "html"])
def test_a_dated_letter_has_no_date_line_to_fill_in(case: Path, letter_type: str, voice: str, fmt: str) -> None:
    d = api.draft(api.load_case(case), letter_type=letter_type, fmt=fmt, letter_date=DAY, voice=voice)
    assert "December" not in d.text and d.letter.sentence("header.date").text == "November 21, 2026"
    assert "Date: ____" not in d.text and not any(s.id == "signature.date" for s in d.letter.sentences)
    assert "________________" in d.text  # the signature line itself stays


def test_the_pdf_has_no_date_line(lmn: Path) -> None:
    assert "Date: ____" not in " ".join(_text(lmn, i) for i in range(3))


def _uris(pdf: Path) -> list[str]:
    from pypdf import PdfReader

    out = []
    for page in PdfReader(pdf).pages:
        for annot in page.get("/Annots") or []:
            action = annot.get_object().get("/A")
            if action is not None and action.get("/URI"):
                out.append(str(action["/URI"]))
    return out


def test_dois_and_urls_are_links_in_the_pdf(lmn: Path) -> None:
    uris = _uris(lmn)
    assert "https://doi.org/10.1155/2015/517657" in uris
    assert "https://emedicine.medscape.com/article/399094-overview" in uris
    refs = api.draft(api.load_case(CHORDOMA), letter_date=DAY).letter.references
    assert len({u for u in uris if "doi.org" in u or "medscape" in u}) == len(refs)  # a link may wrap in two


def test_dois_and_urls_are_links_in_html_and_the_words_stay(tmp_path: Path) -> None:
    code, out, err = run_cli("draft", str(CHORDOMA), "--format", "html", "--date", DATE, "-o", str(tmp_path))
    assert code == 0, err
    page = Path(out.splitlines()[0].removeprefix("wrote ")).read_text()
    assert '<a href="https://doi.org/10.1186/s13569-016-0047-1">doi:10.1186/s13569-016-0047-1</a>.' in page
    assert '<a href="https://emedicine.medscape.com/article/399094-overview">' in page
    ledger = tmp_path / "chordoma-gluteal-001.lmn.ledger.json"
    code, out, _ = run_cli("validate", str(tmp_path / "chordoma-gluteal-001.lmn.html"), "--ledger", str(ledger))
    assert code == 0, out  # the reference sentences are found word for word
    md = api.draft(api.load_case(CHORDOMA), letter_date=DAY).text
    assert "<a " not in md and "doi:10.1186/s13569-016-0047-1." in md


def test_every_reference_links_its_doi_or_url_and_keeps_its_words() -> None:
    kb = load_kb()
    for source in kb.sources.values():
        text = source.reference()
        out = str(linked(text))
        assert html.unescape(re.sub(r"<[^>]+>", "", out)) == text, source.id
        hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', out)]
        if source.doi:
            assert hrefs[:1] == [f"https://doi.org/{source.doi}"], source.id
        elif source.url:
            assert hrefs == [source.url], source.id


@pytest.fixture(scope="module")
def covered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _pdf_stack()
    return _draft_pdf(tmp_path_factory.mktemp("cover"), CHORDOMA, "--cover")


def test_the_fax_cover_page(covered: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    pages = len(PdfReader(covered).pages)
    assert pages == 4  # the cover and the three pages of the letter
    cover = _text(covered, 0)
    for part in (
        "Fax",
        "To: Example Health Plan",
        "Attn: Utilization Management, Prior Authorization",
        "From: A. Example, MD",
        "Riverside Orthopaedic Oncology Clinic",
        "Phone: 555-0100",
        "Date: November 21, 2026",
        "Re: Letter of medical necessity and request for prior authorization",
        f"Pages, including this cover: {pages}",
        "Confidentiality notice",
        "please notify the sender at the number above",
    ):
        assert part in cover, part
    case = api.load_case(CHORDOMA).case
    assert not [i for i in case.identifiers() if i in cover and i != case.provider.npi]  # no patient on the cover
    assert "NPI" not in cover and "Jane" not in cover and "1965" not in cover
    # The letter starts on page 2, with its letterhead and no continuation header; page 3 has one.
    assert _text(covered, 1).startswith("Riverside Orthopaedic Oncology Clinic")
    assert all(y < 60 for y in _where(covered, 1, f"Page 2 of {pages}"))
    assert all(y > LETTER_HEIGHT - 70 for y in _where(covered, 2, f"Page 3 of {pages}"))
    # Its words are recorded sentences like every other, in the ledger, and the count is the PDF's.
    ledger = json.loads(covered.with_name("chordoma-gluteal-001.lmn.ledger.json").read_text())
    recorded = {s["id"]: s["text"] for s in ledger["sentences"]}
    assert recorded["cover.pages"] == str(pages) and recorded["cover.to"] == "Example Health Plan"
    assert ledger["validation"]["ok"]
    # The same case and date give the same bytes.
    assert _draft_pdf(tmp_path, CHORDOMA, "--cover").read_bytes() == covered.read_bytes()


def test_the_cover_counts_the_pages_of_each_payer_letter(tmp_path: Path) -> None:
    _pdf_stack()
    from pypdf import PdfReader

    for letter_type in api.COVER_TYPES:
        case = CHORDOMA if letter_type == "lmn" else ERISA
        d = api.draft(api.load_case(case), letter_type=letter_type, fmt="pdf", letter_date=DAY, cover=True)
        pages = len(PdfReader(io.BytesIO(d.content)).pages)
        assert d.letter.sentence("cover.pages").text == str(pages) and d.validation.ok, letter_type
        covers = [s for s in d.letter.sentences if s.id.startswith("cover.")]
        assert covers and not any(is_prose(s) for s in covers)  # never sent to a model


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--format", "md", "--cover"), "--cover: a fax cover page is for --format pdf, not md"),
        (("--format", "html", "--cover"), "--cover: a fax cover page is for --format pdf, not html"),
        (("--format", "pdf", "--type", "determination", "--cover"), "goes with a payer letter"),
        (("--format", "pdf", "--type", "peer_to_peer", "--cover"), "goes with a payer letter"),
    ],
)
def test_a_cover_is_for_a_pdf_payer_letter(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    code, _, err = run_cli("draft", str(ERISA), "--date", DATE, "-o", str(tmp_path), *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_the_cover_prints_only_labels_and_recorded_sentences() -> None:
    # The render refuses any other text (lettergen.letter.labels); here the cover of every payer letter, in the
    # document the PDF is laid out from.
    for letter_type in LETTER_TYPES:
        if letter_type not in api.COVER_TYPES:
            continue
        case = api.load_case(CHORDOMA if letter_type == "lmn" else ERISA)
        staged = api.stage(case, letter_type=letter_type, fmt="pdf", letter_date=DAY, cover=True)
        document = html_document(staged.letter, staged.loaded.case, DAY, cover=True)
        assert '<section class="cover">' in document and "@page :nth(2)" in document
