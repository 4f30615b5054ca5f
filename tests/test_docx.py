"""The DOCX letter as Word and LibreOffice lay it out: page numbers in the footer, the PDF's look (letterhead
and its rule, fonts, black headings), references kept together, and the text still validating after a
LibreOffice save. The LibreOffice tests convert the chordoma appeal (three pages), and copies of it whose
references are pushed down the page, in one headless run with a profile folder of their own."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, run_cli

docx = pytest.importorskip("docx")

APPEAL = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"
DATE = "2026-11-21"
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")


def _draft(folder: Path) -> tuple[Path, Path]:
    code, _, err = run_cli(
        "draft", str(APPEAL), "--type", "appeal", "--format", "docx", "--date", DATE, "-o", str(folder)
    )
    assert code == 0, err
    return folder / "appeal-erisa-chordoma-001.appeal.docx", folder / "appeal-erisa-chordoma-001.appeal.ledger.json"


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _draft(tmp_path_factory.mktemp("docx"))


def _soffice(tmp: Path, target: str, source: Path) -> Path:
    assert SOFFICE is not None
    out = tmp / f"out-{target}"
    profile = f"-env:UserInstallation=file://{tmp}/profile"
    cmd = [SOFFICE, profile, "--headless", "--convert-to", target, "--outdir", str(out), str(source)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (result,) = out.glob(f"*.{target}")
    return result


PADDINGS = range(0, 40, 8)  # lines put before the references (test_references_move_to_the_next_page_whole)


@pytest.fixture(scope="module")
def converted(drafted: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The letter, and copies of it with lines put before its references, converted to PDF by LibreOffice in
    one headless run (its start is most of the time)."""
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    tmp = tmp_path_factory.mktemp("soffice")
    sources = [drafted[0]]
    for pad in PADDINGS:
        document = docx.Document(str(drafted[0]))
        target = next(p for p in document.paragraphs if p.text == "References")
        for _ in range(pad):
            target.insert_paragraph_before("A line that moves the references down.")
        document.save(str(tmp / f"pad{pad:02d}.docx"))
        sources.append(tmp / f"pad{pad:02d}.docx")
    out = tmp / "pdf"
    profile = f"-env:UserInstallation=file://{tmp}/profile"
    cmd = [SOFFICE, profile, "--headless", "--convert-to", "pdf", "--outdir", str(out), *map(str, sources)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return {
        "letter": out / f"{drafted[0].stem}.pdf",
        **{f"pad{pad:02d}": out / f"pad{pad:02d}.pdf" for pad in PADDINGS},
    }


def test_footer_fields_are_runs_of_the_paragraph(drafted: tuple[Path, Path]) -> None:
    # The PAGE and NUMPAGES fields sat inside a text run (w:r > w:fldSimple), which the schema does not allow:
    # Word and LibreOffice printed "Page  of". Now each field is begin / instruction / separate / result / end
    # runs, siblings of the paragraph's other runs.
    footer = docx.Document(str(drafted[0])).sections[0].footer
    (para,) = footer.paragraphs
    p = para._p
    assert not p.findall(f".//{W}fldSimple")
    for r in p.iter(f"{W}r"):
        assert r.getparent() is p  # no run inside a run, nor inside anything else
    kinds = [c.get(f"{W}fldCharType") for c in p.iter(f"{W}fldChar")]
    assert kinds == ["begin", "separate", "end"] * 2
    assert [t.text.strip() for t in p.iter(f"{W}instrText")] == ["PAGE", "NUMPAGES"]
    assert para.text.startswith("Appeal: appeal-erisa-chordoma-001\tPage ")


@needs_soffice
def test_libreoffice_prints_page_n_of_n(converted: dict[str, Path]) -> None:
    from pypdf import PdfReader

    pages = PdfReader(converted["letter"]).pages
    assert len(pages) >= 2
    for n, page in enumerate(pages, 1):
        text = " ".join((page.extract_text() or "").split())
        assert f"Page {n} of {len(pages)}" in text, text[-200:]
        assert "Appeal: appeal-erisa-chordoma-001" in text
    first = " ".join((pages[0].extract_text() or "").split())
    assert "Page  of" not in first and first.startswith("Riverside Orthopaedic Oncology Clinic")


def _rpr(style: Any) -> Any:
    return style.element.find(f"{W}rPr")


@pytest.mark.parametrize("level", [1, 2, 3])
def test_headings_are_black_serif_not_the_templates_blue(drafted: tuple[Path, Path], level: int) -> None:
    style = docx.Document(str(drafted[0])).styles[f"Heading {level}"]
    rpr = _rpr(style)
    fonts = rpr.find(f"{W}rFonts")
    assert {k.removeprefix(W): v for k, v in fonts.attrib.items()} == {
        "ascii": "DejaVu Serif",
        "hAnsi": "DejaVu Serif",
        "cs": "DejaVu Serif",
        "eastAsia": "DejaVu Serif",
    }  # no asciiTheme (Cambria): a theme attribute wins over a named font
    color = rpr.find(f"{W}color")
    assert color.get(f"{W}val") == "000000" and color.get(f"{W}themeColor") is None
    assert style.font.bold is True and style.font.size.pt == {1: 13.0, 2: 11.5, 3: 10.5}[level]
    assert style.paragraph_format.keep_with_next is True


def test_body_letterhead_and_footer_look_like_the_pdf(drafted: tuple[Path, Path]) -> None:
    document = docx.Document(str(drafted[0]))
    normal = document.styles["Normal"]
    assert normal.font.name == "DejaVu Serif" and normal.font.size.pt == 10.5
    assert document.styles["Footer"].font.name == "DejaVu Sans" and document.styles["Footer"].font.size.pt == 8
    (head,) = [p for p in document.paragraphs if p.style.name == "Letterhead"]
    assert head.text.splitlines()[0] == "Riverside Orthopaedic Oncology Clinic"
    assert head.style.font.name == "DejaVu Sans"
    assert head.runs[0].bold and head.runs[0].font.size.pt == 14
    rule = head.style.element.find(f"{W}pPr/{W}pBdr/{W}bottom")
    assert rule is not None and rule.get(f"{W}sz") == "12" and rule.get(f"{W}color") == "000000"  # 1.5 pt, black
    section = document.sections[0]
    assert (round(section.page_width.mm, 1), round(section.page_height.mm, 1)) == (215.9, 279.4)
    with zipfile.ZipFile(drafted[0]) as z:
        fonts = z.read("word/fontTable.xml").decode()
    # Word has no fallback list: the font table names the stand-in where DejaVu is not installed
    assert re.search(r'w:name="DejaVu Serif"><w:altName w:val="Times New Roman"/>', fonts)
    assert re.search(r'w:name="DejaVu Sans"><w:altName w:val="Arial"/>', fonts)


def test_references_are_kept_together(drafted: tuple[Path, Path]) -> None:
    paragraphs = docx.Document(str(drafted[0])).paragraphs
    heading = next(i for i, p in enumerate(paragraphs) if p.text == "References")
    assert paragraphs[heading].style.paragraph_format.keep_with_next
    refs = [p for p in paragraphs[heading + 1 :] if p.style.name == "Reference"]
    assert len(refs) == 7 and [p.text.split(".", 1)[0] for p in refs] == [str(i) for i in range(1, 8)]
    assert refs == paragraphs[heading + 1 : heading + 8]  # one run of paragraphs, nothing between
    assert all(p.style.paragraph_format.keep_together for p in refs)
    assert [bool(p.paragraph_format.keep_with_next) for p in refs] == [True] * 6 + [False]
    # "Sincerely," stays with the signature, which is never split
    sincerely = next(p for p in paragraphs if p.text == "Sincerely,")
    signature = paragraphs[paragraphs.index(sincerely) + 1]
    assert sincerely.paragraph_format.keep_with_next and signature.paragraph_format.keep_together


@needs_soffice
def test_validates_untouched_and_after_a_libreoffice_save(tmp_path: Path) -> None:
    letter, ledger = _draft(tmp_path)
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 0, out
    saved = _soffice(tmp_path, "docx", letter)
    letter.write_bytes(saved.read_bytes())
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 0, out
    # LibreOffice kept the footer's fields
    footer = docx.Document(str(letter)).sections[0].footer._element.xml
    assert "PAGE" in footer and "NUMPAGES" in footer


def test_reading_back_refuses_a_package_that_unpacks_too_large(
    drafted: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `lettergen validate` and the service's /v1/validate read a .docx someone sent: a zip bomb is refused from
    # the sizes its entries declare (a zip entry reads no more than it declares), before python-docx opens it.
    from lettergen.errors import CaseError
    from lettergen.outputs import docx_out

    data = drafted[0].read_bytes()
    assert "Riverside Orthopaedic Oncology Clinic" in docx_out.docx_text(data, "letter.docx")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (docx_out.MAX_UNPACKED + 1))
    with pytest.raises(CaseError, match="unpacks to more than 50 MB"):
        docx_out.docx_text(bomb.getvalue(), "letter.docx")
    monkeypatch.setattr(docx_out, "MAX_UNPACKED", 1000)
    with pytest.raises(CaseError, match="unpacks to more than"):
        docx_out.docx_text(data, "letter.docx")
    with pytest.raises(CaseError, match="not a readable"):
        docx_out.docx_text(b"not a zip", "letter.docx")


@needs_soffice
def test_references_move_to_the_next_page_whole(drafted: tuple[Path, Path], converted: dict[str, Path]) -> None:
    # Lines put before the references shift them down, past a page end: LibreOffice lays out every copy with
    # the whole list on one page (heading included), never split across two.
    from pypdf import PdfReader

    paragraphs = docx.Document(str(drafted[0])).paragraphs
    heading = next(i for i, p in enumerate(paragraphs) if p.text == "References")
    refs = [p.text.split("\t", 1)[1][:20] for p in paragraphs[heading + 1 :] if p.style.name == "Reference"]
    pages_of_references = set()
    for pad in PADDINGS:
        pages = [" ".join((p.extract_text() or "").split()) for p in PdfReader(converted[f"pad{pad:02d}"]).pages]
        found = {key: [n for n, text in enumerate(pages, 1) if key in text] for key in ["References", *refs]}
        assert all(len(where) == 1 for where in found.values()), (pad, found)
        assert len({where[0] for where in found.values()}) == 1, (pad, found)  # one page for them all
        pages_of_references.add(found["References"][0])
    assert len(pages_of_references) > 1  # the lines did push the list past a page end
