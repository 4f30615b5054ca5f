"""Document outputs around a rendered letter: standalone HTML, PDF, DOCX and a FHIR Bundle.

``api`` renders the letter (HTML for html/pdf/docx, plain text for fhir) and calls :func:`encode`.
HTML needs nothing beyond Jinja; the other formats import their optional library only when asked
(extras ``pdf``, ``docx``, ``fhir``), so the offline text path never loads them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from markupsafe import Markup

from lettergen import __version__
from lettergen.case.model import Case
from lettergen.decision.engine import Decision
from lettergen.errors import UsageError
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter, _env, check_document, templates_dir

DOCUMENT_TEMPLATE = "_document.html.j2"

TITLES = {
    "lmn": "Letter of medical necessity",
    "appeal": "Appeal",
    "external_review": "Request for external review",
    "peer_to_peer": "Peer-to-peer talking points",
    "determination": "Medical necessity determination",
}

_SAFE = re.compile(r"[^A-Za-z0-9 ._,:-]")


def letter_title(letter: Letter, case: Case) -> str:
    # Only the letter type and the case id (a file-name-safe id): never a patient identifier.
    return _SAFE.sub("", f"{TITLES.get(letter.type, letter.type)}: {case.case_id}")


def letter_datetime(day: date) -> datetime:
    """The fixed moment documents record as created and modified: midnight UTC of the letter date."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


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
