"""Reading a case: YAML or JSON in lettergen's case format, or a FHIR R4 Bundle (:mod:`lettergen.case.fhir_in`)."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lettergen.case.model import Case, case_from_mapping
from lettergen.errors import CaseError
from lettergen.yamlio import parse_mapping, read_text

if TYPE_CHECKING:
    from lettergen.case.profile import Profile


def parse_case(text: str, file: str, known_facts: Container[str] | None = None, profile: Profile | None = None) -> Case:
    """Parse case text (YAML, JSON, or a FHIR R4 Bundle) into a Case; errors name the file and field (a fact by
    its id only when it is one of ``known_facts``, by default those the installed knowledge base declares).
    With a practice ``profile``, the provider fields the case leaves out come from it."""
    data = parse_mapping(text, file, CaseError, json_only=file.lower().endswith(".json"))
    return case_from_data(data, file, known_facts, profile)


def case_from_data(
    data: dict[str, Any], file: str, known_facts: Container[str] | None = None, profile: Profile | None = None
) -> Case:
    """A parsed case file or request body: lettergen's case mapping, or a FHIR R4 Bundle."""
    if data.get("resourceType") == "Bundle":
        from lettergen.case.fhir_in import case_from_bundle  # only for FHIR input

        case = case_from_bundle(data, file, known_facts)
        if profile is None:
            return case
        from lettergen.case.profile import fill_case  # a Bundle names its Practitioner: the rest may come from here

        return fill_case(case, profile)
    if profile is not None:
        from lettergen.case.profile import fill_mapping

        data = fill_mapping(data, profile)
    return case_from_mapping(data, file, known_facts)


def read_case(path: Path) -> Case:
    return parse_case(read_text(path, CaseError), str(path))
