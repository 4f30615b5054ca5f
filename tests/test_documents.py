"""Document formats: standalone HTML, PDF (text, page render, fonts, reproducible bytes), DOCX."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lettergen import api
from lettergen.errors import MissingExtra
from tests.conftest import CHORDOMA, EXAMPLES, run_cli

DATE = "2026-11-21"


def _draft(tmp: Path, fmt: str, case: Path = CHORDOMA, *extra: str) -> Path:
    code, out, err = run_cli("draft", str(case), "--format", fmt, "--date", DATE, "-o", str(tmp), *extra)
    assert code == 0, err
    return Path(out.splitlines()[0].removeprefix("wrote "))


def _needs_weasyprint() -> None:
    pytest.importorskip("weasyprint", exc_type=ImportError)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_weasyprint()
    return _draft(tmp_path_factory.mktemp("pdf"), "pdf")


def test_html_is_a_standalone_printable_document(tmp_path: Path) -> None:
    text = _draft(tmp_path, "html").read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "@page" in text and "counter(page)" in text and 'class="block letterhead"' in text
    assert 'class="block signature"' in text and "<h2>References</h2>" in text
    assert "Jane Q. Sample" not in text.split("<body>")[0]  # no patient identifier in the title or head


@pytest.mark.parametrize("fmt", ["html", "docx"])
def test_unedited_document_validates(tmp_path: Path, fmt: str) -> None:
    letter = _draft(tmp_path, fmt)
    ledger = letter.with_name(letter.name.replace(f".{fmt}", ".ledger.json"))
    code, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 0, out


@pytest.mark.parametrize(
    ("name", "html_escaped"),
    [
        ("{{ 7*7 }} Sample", "{{ 7*7 }} Sample"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("O'Brien & <b>Sons</b>", "O&#39;Brien &amp; &lt;b&gt;Sons&lt;/b&gt;"),
    ],
)
def test_case_text_is_escaped_in_html(tmp_path: Path, name: str, html_escaped: str) -> None:
    import yaml

    data = yaml.safe_load(CHORDOMA.read_text())
    data["patient"]["name"] = name
    case = tmp_path / "case.yaml"
    case.write_text(yaml.safe_dump(data))
    text = _draft(tmp_path, "html", case).read_text()
    assert html_escaped in text
    assert "<script>" not in text and "49 Sample" not in text


def test_pdf_text_has_letter_parts(pdf: Path) -> None:
    from pypdf import PdfReader

    reader = PdfReader(pdf)
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    for part in (
        "Riverside Orthopaedic Oncology Clinic",
        "Letter of medical necessity and request for prior authorization",
        "20206",
        "References",
        "doi:10.1186/s13569-016-0047-1",
        "NPI 1234567893",
        "________",
        f"Page 1 of {len(reader.pages)}",
    ):
        assert part in text, part
    assert reader.metadata is not None and reader.metadata.title == "Letter of medical necessity: chordoma-gluteal-001"


def test_pdf_fonts_are_embedded(pdf: Path) -> None:
    from pypdf import PdfReader

    fonts: dict[str, bool] = {}
    for page in PdfReader(pdf).pages:
        resources: Any = page["/Resources"]
        for font in resources["/Font"].values():
            font = font.get_object()
            desc = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            desc = desc.get_object()
            fonts[str(font["/BaseFont"])] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts and all(fonts.values()), fonts


def test_pdf_page_one_renders(pdf: Path, tmp_path: Path) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    doc = pdfium.PdfDocument(str(pdf))
    image = doc[0].render(scale=1).to_pil()
    out = tmp_path / "page1.png"
    image.save(out)
    assert image.size == (612, 792)  # US letter at 72 dpi
    dark = sum(image.convert("L").histogram()[:128])
    assert 0.01 < dark / (612 * 792) < 0.5  # ink on the page, not a blank or black page
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("fmt", ["pdf", "docx", "html", "fhir"])
def test_fixed_date_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    if fmt == "pdf":
        _needs_weasyprint()
    first = _draft(tmp_path / "a", fmt).read_bytes()
    second = _draft(tmp_path / "b", fmt).read_bytes()
    assert first == second


def test_docx_has_same_content_and_numbered_references(tmp_path: Path) -> None:
    import docx

    path = _draft(tmp_path, "docx")
    document = docx.Document(str(path))
    paragraphs = [p.text for p in document.paragraphs]
    md = _draft(tmp_path / "md", "md").read_text()
    draft = api.draft(api.load_case(CHORDOMA), fmt="docx", letter_date=date.fromisoformat(DATE))
    body = "\n".join(paragraphs)
    for s in draft.letter.sentences:  # every sentence of the letter, word for word
        assert s.text in body, s.id
    refs = paragraphs[paragraphs.index("References") + 1 :]
    numbered = [p for p in refs if p[:1].isdigit()]
    assert [p.split(".", 1)[0] for p in numbered] == [str(i) for i in range(1, len(draft.letter.references) + 1)]
    assert "[1, 2, 3]" in body and "[1, 2, 3]" in md
    assert any(p.style is not None and p.style.name.startswith("Heading") for p in document.paragraphs)
    props = document.core_properties
    assert props.created is not None and props.created.date().isoformat() == DATE
    assert props.modified == props.created and props.title.endswith("chordoma-gluteal-001")
    footer = document.sections[0].footer._element.xml
    assert "PAGE" in footer and "NUMPAGES" in footer
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        assert {i.date_time[:3] for i in z.infolist()} == {(2026, 11, 21)}


def test_edited_docx_is_caught(tmp_path: Path) -> None:
    import docx

    path = _draft(tmp_path, "docx")
    document = docx.Document(str(path))
    target = next(p for p in document.paragraphs if "October 28, 2026" in p.text)
    for run in target.runs:
        run.text = run.text.replace("October 28, 2026", "October 28, 2025")
    document.save(str(path))
    code, out, _ = run_cli("validate", str(path), "--ledger", str(path.with_name(path.name[:-5] + ".ledger.json")))
    assert code == 1 and "2025-10-28" in out


@pytest.mark.parametrize("fmt", ["pdf", "fhir"])
def test_validate_refuses_uneditable_formats(tmp_path: Path, fmt: str) -> None:
    if fmt == "pdf":
        _needs_weasyprint()
    path = _draft(tmp_path, fmt)
    ledger = path.parent / "chordoma-gluteal-001.lmn.ledger.json"
    code, _, err = run_cli("validate", str(path), "--ledger", str(ledger))
    assert code == 2 and "cannot be edited" in err


@pytest.mark.parametrize(
    ("fmt", "module", "extra"), [("pdf", "weasyprint", "pdf"), ("docx", "docx", "docx"), ("fhir", "fhir", "fhir")]
)
def test_missing_extra_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, module: str, extra: str
) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module or name.startswith(module + "."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingExtra):
        api.draft(api.load_case(CHORDOMA), fmt=fmt)
    code, _, err = run_cli("draft", str(CHORDOMA), "--format", fmt, "-o", str(tmp_path))
    assert code == 3 and f"lettergen[{extra}]" in err
    assert not list(tmp_path.iterdir())


def test_offline_text_path_loads_no_document_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from lettergen import api; "
        f"api.draft(api.load_case({str(CHORDOMA)!r}), fmt='html'); api.draft(api.load_case({str(CHORDOMA)!r})); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('weasyprint', 'docx', 'fhir', 'fastapi', 'uvicorn', 'pypdf', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=EXAMPLES)
    assert out.stdout.strip() == "[]"


# Every format of a letter shares one ledger name (<case_id>.<type>.ledger.json, the CLI contract).
@pytest.mark.parametrize(("first", "second"), [("md", "fhir"), ("md", "txt"), ("html", "docx"), ("txt", "md")])
def test_drafting_another_format_into_the_same_folder_says_whose_ledger_it_replaced(
    tmp_path: Path, first: str, second: str
) -> None:
    letter = _draft(tmp_path, first)
    ledger = tmp_path / "chordoma-gluteal-001.lmn.ledger.json"
    code, _, err = run_cli("draft", str(CHORDOMA), "--format", second, "--date", DATE, "-o", str(tmp_path))
    assert code == 0 and f"was {letter.name}'s ledger; that letter cannot be validated now" in err
    code, _, err = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"is the ledger of chordoma-gluteal-001.lmn.{api.EXTENSIONS[second]} (a {second} letter)" in err
    assert f"not of {letter.name}" in err


def test_drafting_the_same_format_again_says_nothing(tmp_path: Path) -> None:
    _draft(tmp_path, "md")
    code, _, err = run_cli("draft", str(CHORDOMA), "--date", DATE, "-o", str(tmp_path))
    assert code == 0 and "ledger" not in err  # only the staff note, no word of a replaced ledger
