"""PDF output: WeasyPrint lays out the standalone HTML letter (extra ``pdf``).

The document never fetches anything: no base URL, and a URL fetcher that refuses every request,
so neither the network nor the file system can leak into a letter. Created and modified dates come
from the HTML's ``dcterms`` meta tags (the letter date), so a fixed ``--date`` gives identical bytes.
The embedded font subsets carry a timestamp of their own (fontTools stamps the ``head`` table);
``SOURCE_DATE_EPOCH`` pins it to the same moment.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, NoReturn

from lettergen.errors import EnvironmentProblem, MissingExtra


def _refuse(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError("lettergen documents load no external resources")


_ENV_LOCK = threading.Lock()


def pdf_bytes(html: str, created: datetime) -> bytes:
    try:
        import weasyprint
    except ImportError:
        raise MissingExtra("pdf", "--format pdf") from None
    except OSError as exc:  # the Python package is there but Pango (a system library) is not
        raise EnvironmentProblem(
            f"--format pdf: WeasyPrint cannot load its system libraries ({exc.__class__.__name__}); "
            "install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
        ) from None
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=_refuse)
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
