"""DOCX output: an editable Word letter with the same content as the HTML letter (extra ``docx``).

The letter's HTML fragment (rendered with autoescape, case text escaped) is read back into blocks
(headings, paragraphs, line blocks, bulleted and numbered items) and written with python-docx.
References are numbered in text ("1.", "2.", ...) so the numbers match the citation markers even
after a person edits the document. Core properties and zip entry times come from the letter date,
so the same case and ``--date`` give identical bytes.

It looks like the PDF: the same page, fonts, letterhead and rule, black headings (every style it uses is
set here, none left to python-docx's template theme), the references kept together on one page where they
fit, and a footer whose "Page n of N" are PAGE and NUMPAGES fields that Word and LibreOffice fill in.
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
    kind: str  # h1 h2 h3 p label letterhead lines signature bullet number
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
            self._open("label")
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


# The look of the PDF (templates/_document.html.j2): DejaVu Serif 10.5 pt at 1.4 line height, a sans-serif
# letterhead over a 1.5 pt rule, black bold headings (the level-2 ones over a thin grey rule), 9 pt references,
# and a footer with the title on the left and "Page n of N" on the right. Word has no font fallback list:
# the font table gives each font an alternative name, family and PANOSE class, so that on a computer without
# DejaVu, Word puts a serif in place of the serif and a sans-serif in place of the sans-serif.
SERIF, SANS = "DejaVu Serif", "DejaVu Sans"
_FONT_TABLE = {
    SERIF: ("Times New Roman", "roman", "02060603050605020204"),
    SANS: ("Arial", "swiss", "020B0603030804020204"),
}
BODY_PT = 10.5
LINE = 1.2  # Word's "multiple" counts DejaVu's own line height (1.164 em): 1.2 of it is CSS's 1.4 em
TEXT = "000000"
# level: size, space before, space after (pt), as the PDF's h2 and h3 (no template writes an h1 today)
HEADINGS = {1: (13.0, 14.0, 5.0), 2: (11.5, 12.6, 4.6), 3: (10.5, 9.5, 3.2)}
FOOTER_PT, FOOTER_COLOR = 8.0, "555555"
LETTERHEAD_PT, LETTERHEAD_NAME_PT, LETTERHEAD_COLOR = 9.0, 14.0, "222222"
REFERENCE_PT = 9.0
# page: US letter, margins as the PDF's @page (top, right, bottom, left)
PAGE_MM = (215.9, 279.4)
MARGINS_MM = (20.0, 20.0, 22.0, 22.0)


def _w(tag: str, **attrs: str) -> Any:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    element = OxmlElement(f"w:{tag}")
    for key, value in attrs.items():
        element.set(qn(f"w:{key}"), value)
    return element


def _set_fonts(rpr: Any, name: str) -> None:
    """One font for every script, no theme font (a theme font attribute wins over a named one)."""
    from docx.oxml.ns import qn

    for old in rpr.findall(qn("w:rFonts")):
        rpr.remove(old)
    fonts = rpr.get_or_add_rFonts()  # python-docx puts it in its place in the schema's order
    for key in ("ascii", "hAnsi", "cs", "eastAsia"):
        fonts.set(qn(f"w:{key}"), name)


# The elements that come after w:pBdr in a w:pPr, and after w:spacing in a w:rPr (the schema's order, which
# Word holds a document to).
_AFTER_PBDR = (
    "shd tabs suppressAutoHyphens kinsoku wordWrap overflowPunct topLinePunct autoSpaceDE autoSpaceDN bidi "
    "adjustRightInd snapToGrid spacing ind contextualSpacing mirrorIndents suppressOverlap jc textDirection "
    "textAlignment textboxTightWrap outlineLvl divId cnfStyle rPr sectPr pPrChange"
)
_AFTER_SPACING = "w kern position sz szCs highlight u effect bdr shd fitText vertAlign rtl cs em lang eastAsianLayout"
_AFTER_SZCS = "highlight u effect bdr shd fitText vertAlign rtl cs em lang eastAsianLayout specVanish oMath"


def _bottom_rule(ppr: Any, eighths: int, color: str, space_pt: int) -> None:
    """A rule under the paragraph, as the PDF's border-bottom (width in eighths of a point)."""
    from docx.oxml.ns import qn

    for old in ppr.findall(qn("w:pBdr")):
        ppr.remove(old)
    border = _w("pBdr")
    border.append(_w("bottom", val="single", sz=str(eighths), space=str(space_pt), color=color))
    ppr.insert_element_before(border, *(f"w:{t}" for t in _AFTER_PBDR.split()))


def _letter_spacing(run: Any, twips: int) -> None:
    rpr = run._r.get_or_add_rPr()
    rpr.insert_element_before(_w("spacing", val=str(twips)), *(f"w:{t}" for t in _AFTER_SPACING.split()))


def _style_fonts(style: Any, name: str, size: float, color: str = TEXT, bold: bool | None = None) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    rpr = style.element.get_or_add_rPr()
    _set_fonts(rpr, name)
    style.font.size = Pt(size)
    for old in rpr.findall(qn("w:szCs")):  # the complex-script size, the same
        rpr.remove(old)
    rpr.insert_element_before(_w("szCs", val=str(round(size * 2))), *(f"w:{t}" for t in _AFTER_SZCS.split()))
    style.font.bold = bold
    style.font.italic = None
    style.font.color.rgb = RGBColor.from_string(color)  # and no themeColor: this color, in any theme


def _styles(document: Any) -> None:
    """Normal, the headings, the list, letterhead, reference and footer styles, all set here: nothing is
    left to the template's theme (its fonts are Calibri and Cambria, its headings blue)."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt

    styles = document.styles
    defaults = styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    _set_fonts(defaults, SERIF)
    normal = styles["Normal"]
    _style_fonts(normal, SERIF, BODY_PT)
    fmt = normal.paragraph_format
    fmt.space_before, fmt.space_after = Pt(0), Pt(BODY_PT * 0.6)
    fmt.line_spacing = LINE
    fmt.widow_control = True
    for level, (size, before, after) in HEADINGS.items():
        for name in (f"Heading {level}", f"Heading {level} Char"):
            _style_fonts(styles[name], SERIF, size, TEXT, bold=True)
        heading = styles[f"Heading {level}"].paragraph_format
        heading.space_before, heading.space_after = Pt(before), Pt(after)
        heading.keep_with_next = heading.keep_together = True
        heading.line_spacing = LINE
        if level <= 2:
            _bottom_rule(styles[f"Heading {level}"].element.get_or_add_pPr(), 4, "BFBFBF", 1)
    bullet = styles["List Bullet"]
    ppr = bullet.element.get_or_add_pPr()
    for old in ppr.findall(qn("w:contextualSpacing")):
        ppr.remove(old)
    bullet.paragraph_format.left_indent = Mm(6)
    bullet.paragraph_format.first_line_indent = Mm(-4)
    bullet.paragraph_format.space_after = Pt(BODY_PT * 0.25)

    letterhead = styles.add_style("Letterhead", WD_STYLE_TYPE.PARAGRAPH)
    letterhead.base_style = normal
    _style_fonts(letterhead, SANS, LETTERHEAD_PT, LETTERHEAD_COLOR)
    letterhead.paragraph_format.space_after = Pt(LETTERHEAD_PT * 1.4)
    letterhead.paragraph_format.keep_together = True
    letterhead.paragraph_format.line_spacing = 1.15
    _bottom_rule(letterhead.element.get_or_add_pPr(), 12, TEXT, 4)

    reference = styles.add_style("Reference", WD_STYLE_TYPE.PARAGRAPH)
    reference.base_style = normal
    _style_fonts(reference, SERIF, REFERENCE_PT)
    ref = reference.paragraph_format
    ref.left_indent, ref.first_line_indent = Mm(6), Mm(-6)
    ref.tab_stops.add_tab_stop(Mm(6))
    ref.space_after = Pt(REFERENCE_PT * 0.25)
    ref.keep_together = True  # a reference is never split between pages; the list is kept together below

    footer = styles["Footer"]
    _style_fonts(footer, SANS, FOOTER_PT, FOOTER_COLOR)
    footer_ppr = footer.element.get_or_add_pPr()
    for old in footer_ppr.findall(qn("w:tabs")):  # the template's centre and right stops, for a 6.5 in line
        footer_ppr.remove(old)
    footer.paragraph_format.line_spacing = 1.0


def _field(para: Any, instr: str) -> None:
    """A complex field as runs beside the paragraph's other runs: begin, instruction, separate, result, end.
    (A field element inside a run is outside the schema: Word and LibreOffice print nothing for it.)"""
    from docx.oxml.ns import qn

    def run(child: Any) -> None:
        r = para.add_run()._r
        r.append(child)

    run(_w("fldChar", fldCharType="begin"))
    instruction = _w("instrText")
    instruction.set(qn("xml:space"), "preserve")
    instruction.text = f" {instr} "
    run(instruction)
    run(_w("fldChar", fldCharType="separate"))
    para.add_run("1")  # the result shown until the field is updated (Word and LibreOffice update it on layout)
    run(_w("fldChar", fldCharType="end"))


def _page_number_footer(section: Any, title: str) -> None:
    """The title on the left, "Page n of N" on the right, as in the PDF's page footer."""
    from docx.enum.text import WD_TAB_ALIGNMENT
    from docx.shared import Emu

    section.footer.is_linked_to_previous = False
    para = section.footer.paragraphs[0]  # the template's footer: one empty paragraph
    para.style = "Footer"
    width = Emu(section.page_width - section.left_margin - section.right_margin)
    stops = para.paragraph_format.tab_stops
    stops.add_tab_stop(width, WD_TAB_ALIGNMENT.RIGHT)
    para.add_run(title)
    para.add_run("\tPage ")
    _field(para, "PAGE")
    para.add_run(" of ")
    _field(para, "NUMPAGES")


def _keep_references_together(paragraphs: list[Any]) -> None:
    for para in paragraphs[:-1]:
        para.paragraph_format.keep_with_next = True


def docx_bytes(letter: Letter, case: Case, day: date, title: str) -> bytes:
    try:
        import docx
        from docx.enum.text import WD_BREAK
        from docx.shared import Mm, Pt
    except ImportError:
        raise MissingExtra("docx", "--format docx") from None

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(PAGE_MM[0]), Mm(PAGE_MM[1])
    top, right, bottom, left = MARGINS_MM
    section.top_margin, section.right_margin = Mm(top), Mm(right)
    section.bottom_margin, section.left_margin = Mm(bottom), Mm(left)
    section.footer_distance = Mm(9)
    _styles(document)

    blocks = read_blocks(letter.text)
    references: list[Any] = []
    for n, block in enumerate(blocks):
        following = blocks[n + 1].kind if n + 1 < len(blocks) else ""
        if block.kind in ("h1", "h2", "h3"):
            para = document.add_heading(level=int(block.kind[1]))
        elif block.kind == "bullet":
            para = document.add_paragraph(style="List Bullet")
            if following != "bullet":  # the list's own margin below its last item
                para.paragraph_format.space_after = Pt(BODY_PT * 0.7)
        elif block.kind == "number":
            para = document.add_paragraph(style="Reference")
            para.add_run(f"{block.number}.\t")
            references.append(para)
            if following != "number":
                para.paragraph_format.space_after = Pt(REFERENCE_PT * 0.7)
        elif block.kind == "letterhead":
            para = document.add_paragraph(style="Letterhead")
        else:
            para = document.add_paragraph()
        if block.kind != "number" and references:
            _keep_references_together(references)
            references = []
        if block.kind == "lines":
            para.paragraph_format.space_after = Pt(BODY_PT * 0.9)
        if block.kind == "label":  # "Services appealed:" over its list
            para.paragraph_format.space_after = Pt(0)
        if block.kind in ("label", "p", "lines") and following in ("bullet", "number", "signature"):
            para.paragraph_format.keep_with_next = True  # a label with its list, "Sincerely," with the signature
        if block.kind == "signature":
            para.paragraph_format.space_before = Pt(BODY_PT * 2.2)
            para.paragraph_format.keep_together = True
        for i, line in enumerate(block.lines):
            if i:
                para.runs[-1].add_break(WD_BREAK.LINE)
            for text, bold in line:
                run = para.add_run(text)
                if bold:
                    run.bold = True
                if block.kind == "letterhead" and i == 0:
                    run.bold = True
                    run.font.size = Pt(LETTERHEAD_NAME_PT)
                    _letter_spacing(run, 6)  # 0.02 em, in twentieths of a point
    if references:
        _keep_references_together(references)

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


def _font_table(xml: bytes) -> bytes:
    """The font table with an entry for each font the letter names: its alternative, family and PANOSE class,
    which Word reads to choose a stand-in on a computer without it."""
    entries = "".join(
        f'<w:font w:name="{name}"><w:altName w:val="{alt}"/><w:panose1 w:val="{panose}"/>'
        f'<w:family w:val="{family}"/><w:pitch w:val="variable"/></w:font>'
        for name, (alt, family, panose) in _FONT_TABLE.items()
    )
    end = xml.rindex(b"</w:fonts>")
    return xml[:end] + entries.encode("utf-8") + xml[end:]


def _fixed_zip(data: bytes, day: date) -> bytes:
    """Rewrite the package with fixed entry times (python-docx stamps the time of saving), adding the letter's
    fonts to the font table on the way (python-docx has no interface to it)."""
    out = io.BytesIO()
    stamp = (day.year, day.month, day.day, 0, 0, 0)
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            content = src.read(info.filename)
            if info.filename == "word/fontTable.xml":
                content = _font_table(content)
            dst.writestr(entry, content)
    return out.getvalue()


MAX_UNPACKED = 50_000_000  # bytes a .docx read back may unpack to (a letter is some 100 kB): no zip bomb


def docx_text(data: bytes, file: str) -> str:
    """The text of a DOCX letter, one paragraph a line (for re-validating a person's edits)."""
    try:
        import docx
    except ImportError:
        raise MissingExtra("docx", "reading a .docx letter") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:  # a zip reads no more than each entry declares
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise CaseError(file, "", "is not a readable .docx document") from None
    if unpacked > MAX_UNPACKED:
        raise CaseError(file, "", f"unpacks to more than {MAX_UNPACKED // 1_000_000} MB: not a letter")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception:  # python-docx raises assorted zip, XML and key errors for a damaged file
        raise CaseError(file, "", "is not a readable .docx document") from None
    return "\n".join(p.text for p in document.paragraphs)
