"""PDF output: WeasyPrint lays out the standalone HTML letter (extra ``pdf``).

The document never fetches anything: no base URL, and a URL fetcher that serves only ``data:`` URIs (the
practice profile's logo and signature image, embedded in the document) and refuses every other request,
so neither the network nor the file system can leak into a letter. Created and modified dates come
from the HTML's ``dcterms`` meta tags (the letter date), so a fixed ``--date`` gives identical bytes.
The embedded font subsets carry a timestamp of their own (fontTools stamps the ``head`` table);
``SOURCE_DATE_EPOCH`` pins it to the same moment.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

from lettergen.errors import EnvironmentProblem, MissingExtra

_ENV_LOCK = threading.Lock()
_REFUSED = "lettergen documents load no external resources"


def _weasyprint() -> Any:
    try:
        import weasyprint
    except ImportError:
        raise MissingExtra("pdf", "--format pdf") from None
    except OSError as exc:  # the Python package is there but Pango (a system library) is not
        raise EnvironmentProblem(
            f"--format pdf: WeasyPrint cannot load its system libraries ({exc.__class__.__name__}); "
            "install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
        ) from None
    return weasyprint


def _fetcher(weasyprint: Any) -> Any:
    """A URL fetcher for ``data:`` URIs only. WeasyPrint 68 and later take a ``URLFetcher`` (which refuses other
    schemes itself); earlier versions a function returning a dict."""
    cls = getattr(getattr(weasyprint, "urls", None), "URLFetcher", None)
    if cls is not None and hasattr(cls, "fetch"):
        return cls(allowed_protocols=("data",))

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith("data:"):
            return weasyprint.default_url_fetcher(url, *args, **kwargs)
        raise ValueError(_REFUSED)

    return fetch


def _document(html: str) -> Any:
    weasyprint = _weasyprint()
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=_fetcher(weasyprint))


def page_count(html: str) -> int:
    """The number of pages the document lays out to."""
    return len(_document(html).render().pages)


def pdf_bytes(html: str, created: datetime) -> bytes:
    document = _document(html)
    with _ENV_LOCK:
        before = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(int(created.timestamp()))
        try:
            data: bytes = document.write_pdf()
        finally:
            if before is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = before
    return data
