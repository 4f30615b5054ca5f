"""JSON Schema of the files a person writes (``lettergen schema export DIR``), for an editor's completion and
checks: a case (this stage's model), a criteria file, a citation file, the criteria vocabulary and a criteria
fixture file (the knowledge stage's models). Generated from the pydantic models that read those files, so the
schema is the one lettergen applies, less what only code can check (a citation that resolves, a fact a rule
declares)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lettergen.case.model import Case
from lettergen.knowledge.citations import Source
from lettergen.knowledge.fixtures import FixtureFile
from lettergen.knowledge.policies import Policy, Vocabulary

DIALECT = "https://json-schema.org/draft/2020-12/schema"

FILES: dict[str, tuple[type[BaseModel], str]] = {
    "case.schema.json": (Case, "A lettergen case file (YAML or JSON)"),
    "criteria.schema.json": (Policy, "A lettergen criteria file: one service policy (criteria/<id>.yaml)"),
    "citation.schema.json": (Source, "A lettergen citation file: one source document (citations/<id>.yaml)"),
    "vocabulary.schema.json": (Vocabulary, "The criteria vocabulary (criteria/_vocabulary.yaml)"),
    "criteria-test.schema.json": (FixtureFile, "Fixtures of one policy (criteria/tests/<policy-id>.yaml)"),
}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12) of what a file of that kind may hold."""
    out: dict[str, dict[str, Any]] = {}
    for name, (model, title) in FILES.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        out[name] = {"$schema": DIALECT, "$id": name, **schema, "title": title}
    return out
