"""The provenance ledger: what a letter was built from, sentence by sentence, and atomic writes.

Same inputs and date give a byte-identical ledger: no wall-clock time, no absolute paths, sorted keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lettergen import __version__
from lettergen.decision.engine import Decision
from lettergen.errors import InputError
from lettergen.letter.render import Letter, Sentence
from lettergen.validation.rules import ValidationResult

SCHEMA_VERSION = "1"


class PolishRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt: str | None = None
    calls: int = 0  # requests sent to the model in this run (retries included)
    cache_hits: int = 0  # answers replayed from the on-disk cache instead
    cached: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    sent: list[str] = []  # sentence ids whose locked text went to the model
    accepted: list[str] = []
    fell_back: dict[str, list[str]] = {}  # sentence id -> the reasons it kept the template wording
    status: str = "not requested"
    error: str | None = None


class Ledger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    lettergen_version: str = __version__
    case_id: str
    case_sha256: str
    letter_type: str
    format: str
    letter_date: str
    letter_file: str
    letter_sha256: str
    template: str
    prompt: str | None = None
    data_files: dict[str, str]
    decision: Decision
    sources: list[str]
    header: str
    sentences: list[Sentence]
    skeleton: str
    polish: PolishRecord
    validation: ValidationResult
    # What the office needs and the payer must not read (lettergen.letter.notes); never part of the letter.
    staff_note: str = ""
    redacted: bool = False


def sha256_text(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def ledger_json(ledger: Ledger) -> str:
    # pydantic-core serialises in declaration order (deterministic) about ten times faster than json.dumps.
    return ledger.model_dump_json(indent=2) + "\n"


def read_ledger(path: Path) -> Ledger:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        return Ledger.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: is not valid JSON (line {exc.lineno})") from None
    except ValidationError as exc:
        from lettergen.yamlio import first_error

        field, msg = first_error(exc)
        raise InputError(f"{path}: {field}: {msg} (not a lettergen ledger?)") from None


def build_ledger(
    *,
    case_id: str,
    case_sha: str,
    letter: Letter,
    letter_file: str,
    letter_bytes: bytes,
    letter_date: str,
    data_files: dict[str, str],
    decision: Decision,
    header: str,
    polish: PolishRecord,
    validation: ValidationResult,
    prompt: str | None = None,
    staff_note: str = "",
) -> Ledger:
    return Ledger(
        staff_note=staff_note,
        case_id=case_id,
        case_sha256=case_sha,
        letter_type=letter.type,
        format=letter.format,
        letter_date=letter_date,
        letter_file=letter_file,
        letter_sha256=sha256_text(letter_bytes),
        template=letter.template,
        prompt=prompt,
        data_files=data_files,
        decision=decision,
        sources=letter.references,
        header=header,
        sentences=letter.sentences,
        skeleton=letter.skeleton,
        polish=polish,
        validation=validation,
    )


def to_jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
