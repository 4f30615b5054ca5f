"""lettergen: deterministic medical-necessity decisions and cited letters.

The public surface, re-exported here::

    import lettergen
    loaded = lettergen.load_case("examples/chordoma-gluteal-mass.yaml")
    decision = lettergen.check(loaded.case)          # Decision (pydantic)
    draft = lettergen.draft(loaded, letter_type="lmn", fmt="md", decision=decision)
    draft.text, draft.ledger, draft.validation       # str, Ledger, ValidationResult
    lettergen.validate_file(Path("letter.md"), Path("letter.ledger.json"))

    staged = lettergen.stage(loaded, letter_type="lmn")    # decide and render: no model, no I/O

    profile = lettergen.resolve_profile()                  # the practice profile (--profile's search), or None
    loaded = lettergen.load_case("case.yaml", profile=profile)
    draft = lettergen.draft(loaded, fmt="pdf", profile=profile, cover=True)
    draft = lettergen.finish(staged, polish=polisher)      # polish (a Polish), validate, encode, ledger

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
    "Issue",
    "KnowledgeBase",
    "Ledger",
    "LettergenError",
    "LoadedCase",
    "MissingExtra",
    "ModelUnavailable",
    "NothingToAppeal",
    "NothingToDraft",
    "OutputError",
    "Polish",
    "Polished",
    "Profile",
    "ProfileError",
    "Staged",
    "UsageError",
    "ValidationFailed",
    "ValidationResult",
    "__version__",
    "check",
    "draft",
    "finish",
    "load_case",
    "load_kb",
    "load_profile",
    "resolve_profile",
    "stage",
    "validate_file",
]

_LAZY = {
    "Case": "lettergen.case.model",
    "Decision": "lettergen.decision.engine",
    "KnowledgeBase": "lettergen.knowledge.store",
    "load_kb": "lettergen.knowledge.store",
    "Draft": "lettergen.api",
    "LoadedCase": "lettergen.api",
    "Staged": "lettergen.api",
    "Polish": "lettergen.api",
    "Polished": "lettergen.api",
    "check": "lettergen.api",
    "draft": "lettergen.api",
    "stage": "lettergen.api",
    "finish": "lettergen.api",
    "load_case": "lettergen.api",
    "validate_file": "lettergen.api",
    "Profile": "lettergen.case.profile",
    "load_profile": "lettergen.case.profile",
    "resolve_profile": "lettergen.case.profile",
    "Ledger": "lettergen.provenance.ledger",
    "Issue": "lettergen.validation.rules",
    "ValidationResult": "lettergen.validation.rules",
    "CaseError": "lettergen.errors",
    "DataError": "lettergen.errors",
    "EnvironmentProblem": "lettergen.errors",
    "InputError": "lettergen.errors",
    "LettergenError": "lettergen.errors",
    "MissingExtra": "lettergen.errors",
    "ModelUnavailable": "lettergen.errors",
    "NothingToAppeal": "lettergen.errors",
    "NothingToDraft": "lettergen.errors",
    "OutputError": "lettergen.errors",
    "ProfileError": "lettergen.errors",
    "UsageError": "lettergen.errors",
    "ValidationFailed": "lettergen.errors",
}

if TYPE_CHECKING:
    from lettergen.api import (
        Draft,
        LoadedCase,
        Polish,
        Polished,
        Staged,
        check,
        draft,
        finish,
        load_case,
        stage,
        validate_file,
    )
    from lettergen.case.model import (
        Case,
    )
    from lettergen.case.profile import (
        Profile,
        load_profile,
        resolve_profile,
    )
    from lettergen.decision.engine import (
        Decision,
    )
    from lettergen.errors import (
        CaseError,
        DataError,
        EnvironmentProblem,
        InputError,
        LettergenError,
        MissingExtra,
        ModelUnavailable,
        NothingToAppeal,
        NothingToDraft,
        OutputError,
        ProfileError,
        UsageError,
        ValidationFailed,
    )
    from lettergen.knowledge.store import (
        KnowledgeBase,
        load_kb,
    )
    from lettergen.provenance.ledger import (
        Ledger,
    )
    from lettergen.validation.rules import (
        Issue,
        ValidationResult,
    )


def __getattr__(name: str) -> Any:
    # Lazy so that `import lettergen` (and the CLI's start-up) stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lettergen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
