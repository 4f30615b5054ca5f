"""Prompts are data: versioned YAML files in ``prompts/``, rendered by a sandboxed Jinja environment.

A prompt file holds ``id``, ``version``, and the ``system``, ``user`` and ``retry`` templates. Its
``ref`` (``polish-v1``) keys the response cache and goes into the ledger; its sha256 goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lettergen.errors import DataError
from lettergen.knowledge.store import data_dir
from lettergen.provenance.ledger import sha256_text
from lettergen.yamlio import parse_bytes, read_bytes

DEFAULT_PROMPT = "polish-v1"


@dataclass(frozen=True)
class Prompt:
    id: str
    version: int
    system: str
    user: str
    retry: str
    sha256: str
    file: str

    @property
    def ref(self) -> str:
        return f"{self.id}-v{self.version}"

    def render(self, part: str, **values: Any) -> str:
        try:
            return _compiled(getattr(self, part)).render(**values).strip()
        except TemplateError as exc:
            raise DataError(self.file, part, f"template error: {exc}") from None


@cache
def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@cache
def _compiled(source: str) -> Template:
    return _env().from_string(source)


@cache
def load_prompt(name: str = DEFAULT_PROMPT) -> Prompt:
    path = data_dir() / "prompts" / f"{name}.yaml"
    raw = read_bytes(path, DataError)  # read once: parsed, and hashed for the ledger
    data = parse_bytes(raw, path, DataError)
    for key in ("id", "version", "system", "user", "retry"):
        if key not in data:
            raise DataError(str(path), key, "is required")
    if not isinstance(data["version"], int) or not all(
        isinstance(data[k], str) for k in ("id", "system", "user", "retry")
    ):
        raise DataError(str(path), "version", "must be an integer, and id/system/user/retry text")
    prompt = Prompt(
        id=data["id"],
        version=data["version"],
        system=data["system"],
        user=data["user"],
        retry=data["retry"],
        sha256=sha256_text(raw),
        file=f"prompts/{path.name}",
    )
    if prompt.ref != name:
        raise DataError(str(path), "version", f"file name says '{name}' but the file is '{prompt.ref}'")
    return prompt
