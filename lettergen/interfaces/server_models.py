"""The HTTP service's bodies as the OpenAPI schema describes them: the case (lettergen's case model, or a FHIR R4
Bundle) with a complete example, the decision, the draft response, and the validate request and result.

The case is read by the service itself (JSON or YAML, :mod:`lettergen.interfaces.server`), so its schema is
added to the document here rather than drawn from a handler's signature. Every example is one the
service answers with 200: the validate example is the example case's letter and ledger, drafted when the
schema is first asked for, so that it matches the installed templates and knowledge base.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lettergen.provenance.ledger import Ledger
from lettergen.validation.rules import ValidationResult

__all__ = ["EXAMPLE_CASE", "DraftResponse", "ValidateRequest", "ValidationResult", "add_request_bodies"]

# The chordoma case of the README (examples/chordoma-gluteal-mass.yaml) as a request body: fictional, every
# identifier invented. CPT 20206 meets its criteria; 38505 lacks a fact (insufficient).
EXAMPLE_CASE: dict[str, Any] = {
    "case_id": "chordoma-gluteal-001",
    "letter": {"type": "lmn", "date": "2026-11-21"},
    "patient": {"name": "Jane Q. Sample", "birth_date": "1965-03-14", "sex": "female", "member_id": "XYZ000000000"},
    "payer": {
        "name": "Example Health Plan",
        "plan_type": "commercial",
        "state": "CA",
        "address": "PO Box 0000, Springfield, ST 00000",
    },
    "provider": {
        "name": "A. Example",
        "credentials": "MD",
        "specialty": "Orthopaedic Oncology",
        "npi": "1234567893",
        "organization": "Riverside Orthopaedic Oncology Clinic",
        "address": "100 Example Way, Springfield, ST 00000",
        "phone": "555-0100",
    },
    "diagnoses": [
        {
            "code": "C41.4",
            "description": "Chordoma of the sacrum (malignant neoplasm of pelvic bones, sacrum and coccyx)",
        },
        {"code": "C79.89", "description": "Secondary malignant neoplasm of other specified sites"},
    ],
    "services": [
        {"code": "20206", "site": "left gluteal / supragluteal soft-tissue mass", "units": 1, "laterality": "left"},
        {"code": "38505", "site": "superficial lymph node (site not specified in the request)", "units": 1},
    ],
    "facts": {
        "tumor_histology": {
            "value": "chordoma",
            "evidence": "Sacral chordoma, resected, with later metastatic disease.",
            "source": "Orthopaedic oncology clinic note",
            "date": "2026-11-04",
        },
        "mass_enlarging": {
            "value": True,
            "evidence": "Progressively enlarging abnormal soft tissue in the left supragluteal region compared with "
            "prior imaging.",
            "source": "CT abdomen and pelvis",
            "date": "2026-10-28",
        },
        "imaging_suspicious": {
            "value": True,
            "evidence": "The abnormal left supragluteal soft tissue contains internal calcification.",
            "source": "CT abdomen and pelvis",
            "date": "2026-10-28",
        },
        "histology_will_guide_treatment": {
            "value": True,
            "evidence": "In a patient with metastatic chordoma, the treating team must tell local recurrence or a "
            "metastatic deposit from post-treatment change or another process before choosing surgery, radiation "
            "or ablation.",
            "source": "Orthopaedic oncology clinic note",
            "date": "2026-11-04",
        },
        "lesion_accessible_percutaneous": {
            "value": True,
            "evidence": "Superficially located gluteal soft-tissue mass judged suitable for CT-guided core needle "
            "biopsy.",
            "source": "Orthopaedic oncology clinic note",
            "date": "2026-11-04",
        },
        "uncorrected_coagulopathy": {
            "value": False,
            "evidence": "No bleeding disorder; no anticoagulant or antiplatelet therapy on the medication list.",
            "source": "Orthopaedic oncology clinic note",
            "date": "2026-11-04",
        },
    },
    "enclosures": ["CT abdomen and pelvis report, 2026-10-28", "Orthopaedic oncology clinic note, 2026-11-04"],
}


class DraftResponse(BaseModel):
    """A drafted letter with its ledger (the default answer of /v1/draft; ``Accept: application/pdf`` or the docx
    media type answers with the file itself)."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(description="The letter's file name: <case_id>.<letter type>.<extension>.")
    media_type: str = Field(description="The letter's media type.")
    encoding: Literal["utf-8", "base64"] = Field(description="base64 for pdf and docx, utf-8 for the text formats.")
    letter: str = Field(description="The letter: its text, or its bytes in base64.")
    ledger_filename: str
    ledger: Ledger = Field(description="Every sentence of the letter and what it rests on; /v1/validate reads it.")
    validation: ValidationResult


class ValidateRequest(BaseModel):
    """A letter, possibly edited by a person, and the ledger drafted with it."""

    model_config = ConfigDict(extra="forbid")

    letter: str = Field(
        description="The letter: its text (md, txt or html), or a docx document in base64 (encoding: base64)."
    )
    encoding: Literal["utf-8", "base64"] = "utf-8"
    ledger: Ledger = Field(description="The ledger written with the letter (the ledger of /v1/draft's answer).")


def _case_schemas() -> dict[str, Any]:
    """The case model's JSON schema and the models it refers to, named for ``#/components/schemas``."""
    from lettergen.case.model import Case

    schema = Case.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    defs: dict[str, Any] = schema.pop("$defs", {})
    defs["Case"] = schema
    defs["FhirBundle"] = {
        "title": "FhirBundle",
        "type": "object",
        "description": "A FHIR R4 Bundle holding the case: Patient, Coverage, Practitioner, Condition, "
        "ServiceRequest and Observation resources (see the README's FHIR section).",
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"type": "string"},
            "entry": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["resourceType", "entry"],
    }
    return defs


def _case_body(description: str) -> dict[str, Any]:
    """The request body of an endpoint that takes a case, in JSON or YAML, each with the example case."""
    import yaml

    schema = {"oneOf": [{"$ref": "#/components/schemas/Case"}, {"$ref": "#/components/schemas/FhirBundle"}]}
    return {
        "required": True,
        "description": description,
        "content": {
            "application/json": {"schema": schema, "example": EXAMPLE_CASE},
            "application/yaml": {
                "schema": schema,
                "example": yaml.safe_dump(EXAMPLE_CASE, sort_keys=False, allow_unicode=True, width=100),
            },
        },
    }


def _validate_example() -> dict[str, Any]:
    """The example case's letter (markdown) and its ledger: a request /v1/validate answers with ok: true."""
    import json
    from datetime import date

    from lettergen import api
    from lettergen.case.load import case_from_data
    from lettergen.provenance.ledger import ledger_json

    case = case_from_data(json.loads(json.dumps(EXAMPLE_CASE)), "example")
    loaded = api.LoadedCase(case=case, sha256="0" * 64, file="example")
    draft = api.draft(loaded, fmt="md", letter_date=date(2026, 11, 21))
    ledger: dict[str, Any] = json.loads(ledger_json(draft.ledger))
    return {"letter": draft.content.decode("utf-8"), "encoding": "utf-8", "ledger": ledger}


def add_request_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document FastAPI built, with the case bodies the service reads itself (JSON or YAML, for
    /v1/check and /v1/draft) and the example of /v1/validate's body (FastAPI's own, a :class:`ValidateRequest`)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in _case_schemas().items():
        if name in components and components[name] != definition:
            raise RuntimeError(f"internal: two OpenAPI schemas named {name}")
        components[name] = definition
    paths = schema["paths"]
    description = "The case: lettergen case JSON or YAML (contract v1), or a FHIR R4 Bundle."
    for path in ("/v1/check", "/v1/draft"):
        paths[path]["post"]["requestBody"] = _case_body(description)
    paths["/v1/validate"]["post"]["requestBody"]["content"]["application/json"]["example"] = _validate_example()
    return schema
