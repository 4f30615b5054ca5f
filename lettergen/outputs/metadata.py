"""What every document format records about a letter: its title and its date, never a patient identifier."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from lettergen.case.model import Case
from lettergen.letter.render import Letter

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
