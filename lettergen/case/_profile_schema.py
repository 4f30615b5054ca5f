"""The schema of a practice profile's TOML (lettergen.case.profile): three tables, every key optional, unknown keys
refused, values held to the case file's rules. Apart from profile.py so that finding no profile costs no model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from lettergen.case import codes
from lettergen.case.model import ShortText

References = Literal["before-signature", "after-signature"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class _Practice(_Table):
    organization: ShortText | None = None
    address: ShortText | None = None
    phone: ShortText | None = None
    fax: ShortText | None = None
    logo: ShortText | None = None


class _Signer(_Table):
    name: ShortText | None = None
    credentials: ShortText | None = None
    specialty: ShortText | None = None
    npi: str | None = None
    signature: ShortText | None = None

    @field_validator("npi", mode="before")
    @classmethod
    def _npi(cls, v: Any) -> Any:
        return codes.npi_value(v)


class _LetterStyle(_Table):
    date_style: Literal["us", "iso"] | None = None
    references: References = "before-signature"


class ProfileFile(_Table):
    practice: _Practice = _Practice()
    signer: _Signer = _Signer()
    letter: _LetterStyle = _LetterStyle()
