"""Document outputs around a rendered letter: standalone HTML, PDF, DOCX and a FHIR Bundle.

``api`` renders the letter (HTML for html/pdf/docx, plain text for fhir) and calls :func:`encode`.
HTML needs nothing beyond Jinja; the other formats import their optional library only when asked
(extras ``pdf``, ``docx``, ``fhir``), so the offline text path never loads them.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup

from lettergen import __version__
from lettergen.case.model import Case
from lettergen.decision.engine import Decision
from lettergen.errors import UsageError
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter, _env, check_document, templates_dir
from lettergen.outputs.metadata import letter_datetime, letter_title

DOCUMENT_TEMPLATE = "_document.html.j2"


def html_document(letter: Letter, case: Case, day: date) -> str:
    """Wrap the letter's HTML fragment into a standalone, printable HTML document."""
    if letter.format != "html":
        raise UsageError(f"internal: an HTML document needs the letter rendered as html, not {letter.format}")
    title = letter_title(letter, case)
    env = _env(str(templates_dir()), "html")
    body = letter.text
    document = env.get_template(DOCUMENT_TEMPLATE).render(
        body=Markup(body),
        title=title,
        footer=title,
        created=letter_datetime(day).strftime("%Y-%m-%dT%H:%M:%SZ"),
        version=__version__,
    )
    check_document(document, body, letter.type, DOCUMENT_TEMPLATE)
    return document


def encode(letter: Letter, fmt: str, case: Case, decision: Decision, kb: KnowledgeBase, day: date) -> bytes:
    """The bytes of the letter in ``fmt`` (html, pdf, docx or fhir)."""
    if fmt == "html":
        return html_document(letter, case, day).encode("utf-8")
    if fmt == "pdf":
        from lettergen.outputs.pdf import pdf_bytes

        return pdf_bytes(html_document(letter, case, day), letter_datetime(day))
    if fmt == "docx":
        from lettergen.outputs.docx_out import docx_bytes

        return docx_bytes(letter, case, day, letter_title(letter, case))
    if fmt == "fhir":
        from lettergen.outputs.fhir_out import letter_bundle_json

        return letter_bundle_json(letter, case, decision, kb, day)
    raise UsageError(f"--format: unknown format '{fmt}'")
