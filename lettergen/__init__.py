"""lettergen: deterministic medical-necessity decisions and cited letters.

The public surface, re-exported here::

    import lettergen
    loaded = lettergen.load_case("examples/chordoma-gluteal-mass.yaml")
    decision = lettergen.check(loaded.case)          # Decision (pydantic)
    draft = lettergen.draft(loaded, letter_type="lmn", fmt="md")
    draft.text, draft.ledger, draft.validation
    lettergen.validate_file(Path("letter.md"), Path("letter.ledger.json"))

Errors derive from :class:`LettergenError` (see :mod:`lettergen.errors` for the tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseError",
    "DataError",
    "Decision",
    "Draft",
    "EnvironmentProblem",
    "InputError",
    "LettergenError",
    "MissingExtra",
    "ValidationFailed",
    "__version__",
    "check",
    "draft",
    "load_case",
    "load_kb",
    "validate_file",
]

_LAZY = {
    "Case": "lettergen.case",
    "Decision": "lettergen.criteria",
    "Draft": "lettergen.api",
    "check": "lettergen.api",
    "draft": "lettergen.api",
    "load_case": "lettergen.api",
    "validate_file": "lettergen.api",
    "load_kb": "lettergen.kb",
    "CaseError": "lettergen.errors",
    "DataError": "lettergen.errors",
    "EnvironmentProblem": "lettergen.errors",
    "InputError": "lettergen.errors",
    "LettergenError": "lettergen.errors",
    "MissingExtra": "lettergen.errors",
    "ValidationFailed": "lettergen.errors",
}

if TYPE_CHECKING:
    from lettergen.api import Draft, check, draft, load_case, validate_file
    from lettergen.case import Case
    from lettergen.criteria import Decision
    from lettergen.errors import (
        CaseError,
        DataError,
        EnvironmentProblem,
        InputError,
        LettergenError,
        MissingExtra,
        ValidationFailed,
    )
    from lettergen.kb import load_kb


def __getattr__(name: str) -> Any:
    # Lazy so that `import lettergen` (and the CLI's start-up) stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lettergen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
