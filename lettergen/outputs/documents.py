"""Document outputs around a rendered letter: standalone HTML, PDF, DOCX and a FHIR Bundle.

``api`` renders the letter (HTML for html/pdf/docx, plain text for fhir) and calls :func:`encode`.
HTML needs nothing beyond Jinja; the other formats import their optional library only when asked
(extras ``pdf``, ``docx``, ``fhir``), so the offline text path never loads them.

The practice profile's logo and signature image (lettergen.case.profile) reach the HTML document and the PDF
as data: URIs in the document's style sheet, drawn as the backgrounds of the empty elements the letter's
templates place for them: they add no text, and nothing is fetched. DOCX and FHIR leave them out.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from markupsafe import Markup

from lettergen import __version__
from lettergen.case.model import Case
from lettergen.decision.engine import Decision
from lettergen.errors import UsageError
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter, _env, assemble, check_document, templates_dir
from lettergen.outputs.metadata import letter_datetime, letter_title

if TYPE_CHECKING:
    from lettergen.case.profile import Profile

DOCUMENT_TEMPLATE = "_document.html.j2"


def html_document(letter: Letter, case: Case, day: date, *, profile: Profile | None = None, cover: bool = False) -> str:
    """Wrap the letter's HTML fragment into a standalone, printable HTML document, the references' DOIs and URLs
    made links; with the profile's images, and the page rules of a fax cover page when ``cover``."""
    if letter.format != "html":
        raise UsageError(f"internal: an HTML document needs the letter rendered as html, not {letter.format}")
    title = letter_title(letter, case)
    env = _env(str(templates_dir()), "html")
    body = document_body(letter)
    document = env.get_template(DOCUMENT_TEMPLATE).render(
        body=Markup(body),
        title=title,
        footer=title,
        created=letter_datetime(day).strftime("%Y-%m-%dT%H:%M:%SZ"),
        version=__version__,
        logo=profile.logo.data_uri if profile is not None and profile.logo is not None else None,
        signature=profile.signature.data_uri if profile is not None and profile.signature is not None else None,
        cover=cover,
    )
    check_document(document, body, letter.type, DOCUMENT_TEMPLATE)
    return document


def document_body(letter: Letter) -> str:
    """The letter as the HTML document holds it: its html text with the references' DOIs and URLs made links."""
    return assemble(letter.skeleton, letter.sentences, "html", links=True)


def pdf_page_count(
    letter: Letter, case: Case, day: date, *, profile: Profile | None = None, cover: bool = False
) -> int:
    """How many pages the letter's PDF has (a layout, without writing the file): what a fax cover page counts."""
    from lettergen.outputs.pdf import page_count

    return page_count(html_document(letter, case, day, profile=profile, cover=cover))


def encode(
    letter: Letter,
    fmt: str,
    case: Case,
    decision: Decision,
    kb: KnowledgeBase,
    day: date,
    *,
    profile: Profile | None = None,
    cover: bool = False,
) -> bytes:
    """The bytes of the letter in ``fmt`` (html, pdf, docx or fhir)."""
    if fmt == "html":
        return html_document(letter, case, day, profile=profile).encode("utf-8")
    if fmt == "pdf":
        from lettergen.outputs.pdf import pdf_bytes

        return pdf_bytes(html_document(letter, case, day, profile=profile, cover=cover), letter_datetime(day))
    if fmt == "docx":
        from lettergen.outputs.docx_out import docx_bytes

        return docx_bytes(letter, case, day, letter_title(letter, case))
    if fmt == "fhir":
        from lettergen.outputs.fhir_out import letter_bundle_json

        return letter_bundle_json(letter, case, decision, kb, day)
    raise UsageError(f"--format: unknown format '{fmt}'")
