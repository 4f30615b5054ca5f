"""DOCX output: an editable Word letter with the same content as the HTML letter (extra ``docx``).

The letter's HTML fragment (rendered with autoescape, case text escaped) is read back into blocks
(headings, paragraphs, line blocks, bulleted and numbered items) and written with python-docx.
References are numbered in text ("1.", "2.", ...) so the numbers match the citation markers even
after a person edits the document. Core properties and zip entry times come from the letter date,
so the same case and ``--date`` give identical bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from typing import Any

from lettergen.case.model import Case
from lettergen.errors import CaseError, MissingExtra
from lettergen.letter.render import Letter
from lettergen.outputs.metadata import letter_datetime

Run = tuple[str, bool]  # text, bold
_WS = re.compile(r"\s+")


@dataclass
class Block:
    kind: str  # h1 h2 h3 p letterhead lines signature bullet number
    lines: list[list[Run]] = field(default_factory=lambda: [[]])
    number: int = 0


class _Reader(HTMLParser):
    """Reads the small, known HTML vocabulary that render.py emits."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.current: Block | None = None
        self.bold = 0
        self.lists: list[list[int]] = []  # [kind(0 bullet, 1 numbered), counter]

    def _open(self, kind: str, number: int = 0) -> None:
        self.current = Block(kind=kind, number=number)
        self.blocks.append(self.current)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("h1", "h2", "h3"):
            self._open(tag)
        elif tag == "p":
            kind = next(
                (c for c in ("letterhead", "signature") if c in classes), "lines" if "block" in classes else "p"
            )
            self._open(kind)
        elif tag in ("ul", "ol"):
            self.lists.append([1 if tag == "ol" else 0, 0])
        elif tag == "li":
            if self.lists and self.lists[-1][0]:
                self.lists[-1][1] += 1
                self._open("number", self.lists[-1][1])
            else:
                self._open("bullet")
        elif tag == "br" and self.current is not None:
            self.current.lines.append([])
        elif tag in ("strong", "b"):
            self.bold += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("strong", "b"):
            self.bold = max(0, self.bold - 1)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.current = None
        elif tag in ("p", "li", "h1", "h2", "h3"):
            self.current = None

    def handle_data(self, data: str) -> None:
        text = _WS.sub(" ", data)
        if not text.strip():
            if self.current is not None and self.current.lines[-1]:
                self.current.lines[-1].append((" ", False))
            return
        if self.current is None:  # loose inline text between blocks, e.g. "Requested services:"
            self._open("p")
        assert self.current is not None
        line = self.current.lines[-1]
        if not line:
            text = text.lstrip()
        line.append((text, self.bold > 0))


def _trim(line: list[Run]) -> list[Run]:
    while line and not line[-1][0].strip():
        line = line[:-1]
    if line:
        line = [*line[:-1], (line[-1][0].rstrip(), line[-1][1])]
    return line


def read_blocks(html: str) -> list[Block]:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    blocks = []
    for b in reader.blocks:
        b.lines = [_trim(line) for line in b.lines if any(t.strip() for t, _ in line)]
        if b.lines:
            blocks.append(b)
    return blocks


def _page_number_footer(section: Any, title: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    para = section.footer.paragraphs[0]
    para.text = ""
    left = para.add_run(f"{title}    Page ")
    left.font.size = Pt(8)
    for instr in ("PAGE", "NUMPAGES"):
        run = para.add_run()
        run.font.size = Pt(8)
        fld = OxmlElement("w:fldSimple")
        fld.set(qn("w:instr"), instr)
        inner = OxmlElement("w:r")
        text = OxmlElement("w:t")
        text.text = "1"
        inner.append(text)
        fld.append(inner)
        run._r.append(fld)
        if instr == "PAGE":
            sep = para.add_run(" of ")
            sep.font.size = Pt(8)


def docx_bytes(letter: Letter, case: Case, day: date, title: str) -> bytes:
    try:
        import docx
        from docx.enum.text import WD_BREAK
        from docx.shared import Mm, Pt
    except ImportError:
        raise MissingExtra("docx", "--format docx") from None

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(215.9), Mm(279.4)  # US letter
    section.left_margin = section.right_margin = Mm(22)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    normal = document.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = Pt(11)
    normal.paragraph_format.space_after = Pt(6)

    for block in read_blocks(letter.text):
        if block.kind in ("h1", "h2", "h3"):
            para = document.add_heading(level=int(block.kind[1]))
        elif block.kind == "bullet":
            para = document.add_paragraph(style="List Bullet")
        else:
            para = document.add_paragraph()
        if block.kind == "number":
            para.paragraph_format.left_indent = Mm(8)
            para.paragraph_format.first_line_indent = Mm(-8)
            para.add_run(f"{block.number}.\t")
        if block.kind == "signature":
            para.paragraph_format.space_before = Pt(28)
            para.paragraph_format.keep_together = True
        for i, line in enumerate(block.lines):
            if i:
                para.runs[-1].add_break(WD_BREAK.LINE)
            for text, bold in line:
                run = para.add_run(text)
                run.bold = bold or None
                if block.kind == "letterhead" and i == 0:
                    run.bold = True
                    run.font.size = Pt(15)
                elif block.kind == "letterhead":
                    run.font.size = Pt(9)
                elif block.kind == "number":
                    run.font.size = Pt(9.5)

    _page_number_footer(section, title)
    props = document.core_properties
    when = letter_datetime(day).replace(tzinfo=None)
    props.title = title
    props.author = case.provider.organization or "lettergen"
    props.last_modified_by = "lettergen"
    props.comments = "Drafted by lettergen; every claim is bound to a source in the ledger."
    props.created = props.modified = props.last_printed = when
    props.revision = 1
    buf = io.BytesIO()
    document.save(buf)
    return _fixed_zip(buf.getvalue(), day)


def _fixed_zip(data: bytes, day: date) -> bytes:
    """Rewrite the package with fixed entry times (python-docx stamps the time of saving)."""
    out = io.BytesIO()
    stamp = (day.year, day.month, day.day, 0, 0, 0)
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def docx_text(data: bytes, file: str) -> str:
    """The text of a DOCX letter, one paragraph a line (for re-validating a person's edits)."""
    try:
        import docx
    except ImportError:
        raise MissingExtra("docx", "reading a .docx letter") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception:  # python-docx raises assorted zip, XML and key errors for a damaged file
        raise CaseError(file, "", "is not a readable .docx document") from None
    return "\n".join(p.text for p in document.paragraphs)
