"""Code sets: CPT/HCPCS format, NPI check digit, ICD-10-CM billable codes.

ICD-10-CM validation uses the real code set of the ``simple-icd-10-cm`` package. Importing that
package costs about two seconds, so the hot path reads a compact index of its billable codes that
``scripts``-free regeneration (:func:`build_icd10_index`) writes and a test keeps identical to the
package. Only a code missing from the index pays for the import, to say *why* it is wrong (a
category that is not billable versus a code that does not exist).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Plain text, one code per line: read as it is, where a compressed index had to be decompressed by every
# `lettergen check`.
ICD10_INDEX = Path(__file__).parent / "icd10cm_billable.txt"

# ASCII digits only: ``\d`` would take fullwidth and Arabic-Indic digits too, and print them in the letter.
_CPT = re.compile(r"(?:[0-9]{5}|[0-9]{4}[FTU])\Z")
_HCPCS = re.compile(r"[A-V][0-9]{4}\Z")
_ICD_SHAPE = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?\Z")
_NPI = re.compile(r"[0-9]{10}\Z")


def normalize_service_code(raw: str) -> str:
    """Trimmed and upper-cased. Check that the code is ASCII first: upper-casing maps some letters that are not
    ASCII onto ASCII ones (the long s to S, the ligature fi to FI)."""
    return raw.strip().upper()


def service_code_problem(code: str) -> str | None:
    """Return why ``code`` is not a CPT (Category I/II/III) or HCPCS Level II code, or None."""
    if code.isascii() and (_CPT.match(code) or _HCPCS.match(code)):
        return None
    return SERVICE_CODE_PROBLEM


SERVICE_CODE_PROBLEM = (
    "is not a CPT code (5 digits, or 4 digits and F/T/U) nor a HCPCS Level II code (letter A-V and 4 digits)"
)


def npi_problem(npi: str) -> str | None:
    """Check an NPI: 10 digits with a Luhn check digit over the prefix 80840 (CMS NPI standard)."""
    if not (npi.isascii() and _NPI.match(npi)):
        return "must be 10 digits"
    digits = [int(d) for d in "80840" + npi]
    total = 0
    # Luhn: double every second digit from the right, starting with the one left of the check digit.
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return None if total % 10 == 0 else "fails the NPI check digit"


def normalize_icd10(raw: str) -> str:
    """Upper-case, trim, and put the dot after the third character (``c414`` -> ``C41.4``)."""
    code = raw.strip().upper().replace(" ", "")
    if "." not in code and len(code) > 3:
        code = code[:3] + "." + code[3:]
    return code


class _BillableIndex:
    """Membership in the billable-code index, cheap for one lookup and for ten thousand.

    A command that checks a case or two searches the decompressed text (well under a millisecond per
    code); a batch that keeps asking builds a set once, after which each lookup is a hash probe.
    """

    SET_AFTER = 32

    def __init__(self) -> None:
        self._text: str | None = None
        self._set: frozenset[str] | None = None
        self._lookups = 0

    def warm(self) -> None:
        """Build the set now (a batch does this once, before it forks its workers)."""
        self._lookups = self.SET_AFTER
        "" in self  # noqa: B015 - the lookup itself builds the set

    def __contains__(self, code: str) -> bool:
        if self._set is not None:
            return code in self._set
        if self._text is None:
            self._text = "\n" + ICD10_INDEX.read_text(encoding="ascii")
        self._lookups += 1
        if self._lookups > self.SET_AFTER:
            self._set = frozenset(self._text.split())
            return code in self._set
        return f"\n{code}\n" in self._text


_INDEX = _BillableIndex()


def _billable_index() -> _BillableIndex:
    return _INDEX


def icd10_problem(code: str) -> str | None:
    """Return why a normalised ICD-10-CM code is not billable, or None when it is."""
    if not (code.isascii() and _ICD_SHAPE.match(code)):
        return "is not shaped like an ICD-10-CM code (e.g. C41.4)"
    if code in _billable_index():
        return None
    try:
        import simple_icd_10_cm as icd  # slow import: only for a code the index lacks
    except ImportError:  # pragma: no cover - the index alone is authoritative without the package
        return "is not a billable ICD-10-CM code"
    if icd.is_valid_item(code):
        if icd.is_leaf(code):  # the installed code set is newer than our index
            return None
        children = icd.get_children(code)
        hint = f"; use a more specific code such as {children[0]}" if children else ""
        return f"is an ICD-10-CM category, not a billable code{hint}"
    return "is not in the ICD-10-CM code set"


def icd10_description(code: str) -> str:
    """The code set's own description (slow: imports the code set)."""
    import simple_icd_10_cm as icd

    return str(icd.get_description(code))


def build_icd10_index(path: Path = ICD10_INDEX) -> int:
    """Regenerate the billable-code index from the installed simple-icd-10-cm; returns its size."""
    import simple_icd_10_cm as icd

    codes = sorted(c for c in icd.get_all_codes(True) if icd.is_leaf(c) and not icd.is_chapter_or_block(c))
    path.write_bytes(("\n".join(codes) + "\n").encode("ascii"))
    return len(codes)


if __name__ == "__main__":  # pragma: no cover
    print(build_icd10_index())


def npi_value(v: Any) -> Any:
    """An NPI as a case file or a profile may write it (a number or a string, spaces around): the checked
    string, or ValueError with the problem (pydantic reports it against the field)."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if isinstance(v, str):
        v = v.strip()
        problem = npi_problem(v)
        if problem:
            raise ValueError(problem)
    return v
