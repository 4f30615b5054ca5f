"""Denial codes and denial reasons: which CARC/RARC codes exist, and which rebuttal a denial calls for.

The code list is data (``denial_codes.yaml`` beside this module): X12 claim adjustment reason codes (CARC, e.g.
``CO-50``) and remittance advice remark codes (RARC, e.g. ``N115``), each with its meaning in our own words and
the denial category it signals. A code not in the list is an input error, never silently accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

Category = Literal["not_medically_necessary", "experimental_investigational", "missing_documentation", "coding"]
CATEGORIES: tuple[str, ...] = get_args(Category)

_FILE = Path(__file__).resolve().parent / "denial_codes.yaml"
_CARC = re.compile(r"(?:([A-Z]{2})-?)?([A-Z]?[0-9]{1,3})\Z")
_RARC = re.compile(r"(M|N|MA)[0-9]{1,3}\Z")

# Words in a payer's reason text that name the category, checked in this order when no code decides it.
_REASON_WORDS: tuple[tuple[Category, re.Pattern[str]], ...] = (
    ("experimental_investigational", re.compile(r"experimental|investigational|unproven|not proven", re.I)),
    ("coding", re.compile(r"\bcod(?:e|ing)\b|bundl|modifier|mutually exclusive|incidental", re.I)),
    ("missing_documentation", re.compile(r"document|records?\b|information|attachment|authori[sz]ation", re.I)),
    ("not_medically_necessary", re.compile(r"medical(?:ly)? necess|not necessary|level of care", re.I)),
)


@dataclass(frozen=True)
class CodeInfo:
    code: str
    kind: Literal["CARC", "RARC"]
    meaning: str
    category: Category | None
    group: str | None = None


@cache
def _table() -> dict[str, Any]:
    data = yaml.safe_load(_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def known_codes() -> list[CodeInfo]:
    """Every code of the list: the CARCs (without a group code), then the RARCs."""
    table = _table()
    return [
        CodeInfo(code=str(code), kind=kind, meaning=row["meaning"], category=row["category"])  # type: ignore[arg-type]
        for kind, key in (("CARC", "carc"), ("RARC", "rarc"))
        for code, row in table[key].items()
    ]


def group_codes() -> list[str]:
    """The claim adjustment group codes that may come before a CARC (CO-50)."""
    return list(_table()["groups"])


def lookup(code: str) -> CodeInfo | None:
    """The entry for a CARC (optionally with its group prefix, e.g. CO-50) or RARC; None when unknown."""
    if not code.isascii():  # before upper-casing, which maps some letters that are not ASCII onto ASCII ones
        return None
    code = code.strip().upper()
    table = _table()
    if _RARC.match(code) and code in table["rarc"]:
        row = table["rarc"][code]
        return CodeInfo(code=code, kind="RARC", meaning=row["meaning"], category=row["category"])
    m = _CARC.match(code)
    if m is None:
        return None
    group, number = m.group(1), m.group(2)
    if group is not None and group not in table["groups"]:
        return None
    row = table["carc"].get(number)
    if row is None:
        return None
    canonical = f"{group}-{number}" if group else number
    return CodeInfo(code=canonical, kind="CARC", meaning=row["meaning"], category=row["category"], group=group)


def code_problem(code: str) -> str | None:
    """Why a denial code is not accepted, or None. The code is named only when it is shaped like one (a few
    letters and at most three digits): anything else may be a member id or another patient identifier put in
    the wrong field, and the message (stderr, a batch report, an HTTP answer) must not carry it."""
    if lookup(code) is None:
        upper = code.strip().upper()
        if code.isascii() and (_CARC.match(upper) or _RARC.match(upper)):
            return (
                f"'{upper}' is not a known CARC (e.g. CO-50) or RARC (e.g. N115) code; see lettergen/denial_codes.yaml"
            )
        return "is not shaped like a CARC (e.g. CO-50) or RARC (e.g. N115) code"
    return None


def classify(reason: str, codes: tuple[str, ...], explicit: str | None = None) -> tuple[Category, str]:
    """The denial category and what decided it: the case's own field, a code, the reason text, or the default."""
    if explicit is not None:
        assert explicit in CATEGORIES
        return explicit, "stated in the case"  # type: ignore[return-value]
    for c in codes:
        info = lookup(c)
        if info is not None and info.category is not None:
            return info.category, f"code {info.code}"
    for category, words in _REASON_WORDS:
        if words.search(reason):
            return category, "the denial's reason text"
    return "not_medically_necessary", "default (no code or reason word named another category)"


def unappealable(codes: tuple[str, ...]) -> list[str]:
    """Codes that say the claim has no appeal rights and must be resubmitted (RARC MA130)."""
    return [c for c in codes if (info := lookup(c)) is not None and info.code == "MA130"]
