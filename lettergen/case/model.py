"""The case file (contract v1): pydantic models that reject unknown keys, and the loader.

Loading is two steps: the file must fit the schema (:class:`Case`), then its facts must be the
ones the criteria in use declare, with values of the declared type (:func:`check_facts`). A typo
in a fact id is an error naming it, never a silent "unknown".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lettergen.case import codes, denials
from lettergen.case.denials import Category as DenialCategory
from lettergen.errors import CaseError, LettergenError
from lettergen.yamlio import describe_error, loc_path

LetterType = Literal["lmn", "appeal", "external_review", "peer_to_peer", "determination"]
PlanType = Literal["commercial", "erisa", "aca_individual", "medicare", "medicare_advantage", "medicaid"]

# What no text of a case may hold: C0 and C1 control characters (a multi-line text keeps tab and newline), the
# bidi embeddings and overrides (U+202A-202E) and isolates (U+2066-2069), which reorder what a reader sees, and
# the Unicode line and paragraph separators. lettergen also uses some control characters internally as markers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SEPARATOR = re.compile("[\u2028\u2029]")
_LINE_BREAK = re.compile("[\t\n]")


def _text_problem(text: str, multiline: bool) -> str | None:
    # A printable text holds none of them (the check is a fast scan); one that is not, say with a newline or an
    # accent that combines, is searched.
    if text.isprintable():
        return None
    if _CONTROL.search(text):
        return "contains control characters"
    if _BIDI.search(text):
        return "contains bidirectional control characters (U+202A-202E, U+2066-2069)"
    if _SEPARATOR.search(text):
        return "contains a Unicode line or paragraph separator (U+2028, U+2029)"
    if not multiline and _LINE_BREAK.search(text):
        return "must be one line (it holds a line break or a tab)"
    return None


def _no_control(text: str) -> str:
    """A multi-line text: tab and newline are allowed."""
    problem = _text_problem(text, multiline=True)
    if problem:
        raise ValueError(problem)
    return text


def _one_line(text: str) -> str:
    problem = _text_problem(text, multiline=False)
    if problem:
        raise ValueError(problem)
    return text


# An identifier (member id, group number): ASCII letters and digits, which a '-', '.', '/' or a space may
# separate. Fullwidth or Arabic-Indic digits would be printed as they are and match nothing at the payer.
_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:[-./ ][A-Za-z0-9]+)*\Z")


def _identifier(text: str) -> str:
    if not (text.isascii() and _IDENTIFIER.match(text)):
        raise ValueError("must be ASCII letters and digits (a '-', '.', '/' or a space may separate them)")
    return text


def _ascii_first(v: Any, problem: str) -> Any:
    """Refuse a code that is not ASCII before it is normalised: upper-casing maps some letters that are not
    ASCII onto ASCII ones (the ligature fi to FI, the long s to S)."""
    if isinstance(v, str) and not v.isascii():
        raise ValueError(problem)
    return v


Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_no_control)]
ShortText = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_one_line)]
Identifier = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_identifier)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _not_future(d: date) -> date:
    if d > date.today():
        raise ValueError("is in the future")
    return d


PastDate = Annotated[date, AfterValidator(_not_future)]


class LetterSpec(_Model):
    type: LetterType = "lmn"
    date: dt.date | None = None
    # How the header writes its dates (prose always writes them long: November 21, 2026).
    date_style: Literal["us", "iso"] = "us"


# The Medicare Beneficiary Identifier: 11 characters, the letters S, L, O, I, B and Z never used
# (CMS, "The Medicare Beneficiary Identifier (MBI)", format specification).
_MBI = re.compile(
    r"^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]"
    r"[AC-HJKMNP-RT-Y]{2}[0-9]{2}$"
)


class Patient(_Model):
    name: ShortText
    birth_date: PastDate
    sex: Literal["female", "male", "other", "unknown"] | None = None
    member_id: Identifier | None = None
    # The Medicare number (MBI), for a Medicare or Medicare Advantage plan: a redetermination request must
    # carry it (42 CFR 405.944(b)).
    medicare_number: str | None = None
    address: ShortText | None = None
    group_number: Identifier | None = None

    @field_validator("medicare_number", mode="before")
    @classmethod
    def _mbi(cls, v: Any) -> Any:
        if isinstance(v, str):
            _ascii_first(v, "must be ASCII letters and digits")
            v = v.replace("-", "").replace(" ", "").upper()
            if not _MBI.match(v):
                raise ValueError("is not a Medicare Beneficiary Identifier (11 characters, e.g. 1EG4TE5MK73)")
        return v


class Payer(_Model):
    name: ShortText
    plan_type: PlanType
    state: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    policy: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    address: ShortText | None = None
    fax: ShortText | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        _ascii_first(v, "must be a two-letter state code in ASCII letters (e.g. CA)")
        return v.strip().upper() if isinstance(v, str) else v


class Provider(_Model):
    name: ShortText
    credentials: ShortText | None = None
    specialty: ShortText | None = None
    npi: str
    organization: ShortText | None = None
    address: ShortText | None = None
    phone: ShortText | None = None
    fax: ShortText | None = None

    @field_validator("npi", mode="before")
    @classmethod
    def _npi(cls, v: Any) -> Any:
        return codes.npi_value(v)


class Diagnosis(_Model):
    code: str
    description: ShortText | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _icd(cls, v: Any) -> Any:
        if isinstance(v, str):
            _ascii_first(v, "is not shaped like an ICD-10-CM code (e.g. C41.4)")
            v = codes.normalize_icd10(v)
            problem = codes.icd10_problem(v)
            if problem:
                # The code is named only when it is a category of the code set (so it cannot be patient data);
                # a value of another shape may be a member id put in the wrong field.
                raise ValueError(f"{v} {problem}" if "category" in problem else problem)
        return v


class Rationale(_Model):
    """One entry of the clinician's documented rationale for a service: a chart fact in the clinician's words,
    with the record it is documented in and that record's date. A letter states it as written, cited to
    itself, and the validator holds the sentence to it as to any chart fact (rules 1 and 2). Write findings
    (imaging, examination, treatments tried and their results), not conclusions: a sentence that says the
    service is medically necessary or meets anything is refused for a code no criteria were checked for
    (rule 5)."""

    statement: Text
    source: ShortText
    date: PastDate


class Service(_Model):
    code: str
    site: ShortText | None = None
    units: int = Field(default=1, ge=1, le=99)
    laterality: Literal["left", "right", "bilateral"] | None = None
    # Planned or past: a prior-authorization request names a date to come, an appeal the date it was given.
    date_of_service: date | None = None
    # For a code with no criteria on file (verdict not_assessed): what the service is, in the clinician's words,
    # and the documented rationale the letter rests on. A code with criteria on file is named by its criteria's
    # label and argued on its facts; rationale entries given for it are shown as clinical history.
    label: ShortText | None = None
    rationale: tuple[Rationale, ...] = Field(default=(), max_length=20)

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:05d}"
        if isinstance(v, str):
            v = codes.normalize_service_code(_ascii_first(v, codes.SERVICE_CODE_PROBLEM))
            problem = codes.service_code_problem(v)
            if problem:
                raise ValueError(problem)  # never the value: it may be a member id put in the wrong field
        return v


FactValue = Union[bool, int, float, dt.date, Text]


class Fact(_Model):
    value: FactValue
    unit: ShortText | None = None
    evidence: Text | None = None
    source: ShortText | None = None
    date: PastDate | None = None


class Facts(dict[str, Fact]):
    """A case's facts, read-only: with its tuples and frozen models this makes a whole case immutable, so
    that a decision can be remembered for it (lettergen.api.check). A changed case is a new one:
    ``case.model_copy(update={"facts": {...}})``."""

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a case's facts are read-only; make a new case with model_copy(update={'facts': ...})")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple[type[Facts], tuple[dict[str, Fact]]]:
        # Pickle and deepcopy rebuild a dict subclass item by item, through the __setitem__ refused above.
        return (Facts, (dict(self),))


class Denial(_Model):
    date: PastDate
    reference: ShortText
    reason: Text
    codes: tuple[str, ...] = ()
    level: int = Field(default=1, ge=1, le=5)
    urgent: bool = False
    # The date printed on the notice when it differs from ``date``, and the date the notice was received when
    # documented: deadlines count from them (see lettergen/deadlines.py).
    notice_date: PastDate | None = None
    received: PastDate | None = None
    # How the letter answers the denial; derived from the codes and the reason text when absent.
    category: DenialCategory | None = None

    @field_validator("codes")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for i, c in enumerate(v):
            problem = denials.code_problem(c)  # names the code only when it is shaped like one
            if problem:
                raise ValueError(f"item {i + 1}: {problem}")
            out.append(c.strip().upper())
        return tuple(out)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Denial:
        if self.notice_date and self.notice_date < self.date:
            raise ValueError("notice_date is before the denial date")
        if self.received and self.received < (self.notice_date or self.date):
            raise ValueError("received is before the date of the notice")
        return self


def rationale_id(code: str, n: int) -> str:
    """The chart-fact id of a service's ``n``-th rationale entry (from 1): ``27447.rationale.1``. Never a fact
    id of ``facts`` (those are lower-case words)."""
    return f"{code}.rationale.{n}"


CASE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class Case(_Model):
    case_id: str = Field(pattern=CASE_ID)
    letter: LetterSpec = LetterSpec()
    patient: Patient
    payer: Payer
    provider: Provider
    diagnoses: tuple[Diagnosis, ...] = Field(min_length=1)
    services: tuple[Service, ...] = Field(min_length=1)
    facts: Annotated[dict[str, Fact], AfterValidator(Facts)] = Field(default_factory=Facts)
    denial: Denial | None = None
    enclosures: tuple[ShortText, ...] = ()

    @field_validator("facts", mode="before")
    @classmethod
    def _no_facts(cls, v: Any) -> Any:
        # `facts:` with every fact under it still commented out, as a skeleton of `lettergen init` has it.
        return {} if v is None else v

    @field_validator("enclosures", mode="before")
    @classmethod
    def _no_enclosures(cls, v: Any) -> Any:
        return () if v is None else v

    @field_validator("case_id", mode="before")
    @classmethod
    def _case_id(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.match(CASE_ID, v):
            raise ValueError("must be letters, digits, '.', '_' or '-' (1-100 characters), safe in a file name")
        return v

    @model_validator(mode="after")
    def _unique_services(self) -> Case:
        seen: set[str] = set()
        for i, s in enumerate(self.services):
            if s.code in seen:
                raise ValueError(f"services[{i}].code: {s.code} is requested twice; use units instead")
            seen.add(s.code)
        if self.denial and self.letter.date and self.denial.date > self.letter.date:
            raise ValueError("denial.date: is after the letter date")
        if self.patient.medicare_number and self.payer.plan_type not in ("medicare", "medicare_advantage"):
            raise ValueError("patient.medicare_number: is for Medicare plans; this payer.plan_type is not Medicare")
        return self

    def fact(self, fact_id: str) -> Fact | None:
        return self.facts.get(fact_id)

    def chart_fact(self, fact_id: str) -> Fact | None:
        """A documented chart fact by the id a letter's sentence cites: a fact of ``facts``, or a service's
        rationale entry (``<code>.rationale.<n>``, see :func:`rationale_id`), as a fact whose value and
        evidence are the statement."""
        fact = self.facts.get(fact_id)
        if fact is not None or ".rationale." not in fact_id:
            return fact
        code, _, n = fact_id.partition(".rationale.")
        svc = next((s for s in self.services if s.code == code), None)
        if svc is None or not n.isdigit() or not 1 <= int(n) <= len(svc.rationale):
            return None
        r = svc.rationale[int(n) - 1]
        return Fact(value=r.statement, evidence=r.statement, source=r.source, date=r.date)

    def rationale_facts(self, code: str) -> list[str]:
        """The chart-fact ids of a service's rationale entries, in order."""
        svc = next((s for s in self.services if s.code == code), None)
        return [rationale_id(code, n) for n in range(1, len(svc.rationale) + 1)] if svc else []

    def identifiers(self) -> list[str]:
        """Every patient identifier, for redaction and for the tests that prove none leaks."""
        out = [self.patient.name, self.patient.birth_date.isoformat(), self.provider.npi]
        out += [
            v
            for v in (
                self.patient.member_id,
                self.patient.medicare_number,
                self.patient.address,
                self.patient.group_number,
            )
            if v
        ]
        if self.denial:
            out.append(self.denial.reference)
        return out


def case_from_mapping(data: dict[str, Any], file: str, known_facts: Container[str] | None = None) -> Case:
    """Validate a case mapping; every problem is reported at once (one per field, see CaseError.problems).
    An error names a fact by its id only when the id is one the knowledge base declares (``known_facts``; by
    default those of the installed knowledge base), and another mapping's unknown key only when it is shaped
    like a schema key: a member id or name put there must not reach stderr, a batch report or an HTTP answer."""
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise CaseError.many(file, describe_all(exc, data, known_facts)) from None


_SCHEMA_KEY = re.compile(r"[a-z][a-z_]{0,39}\Z")  # the shape of every key of the schema


def describe_all(exc: ValidationError, data: Any, known_facts: Container[str] | None = None) -> list[tuple[str, str]]:
    """Every error of a case's ValidationError as (field, problem), one per field, in the order pydantic found
    them; never a value."""
    errors = exc.errors(include_url=False, include_input=False)
    out: dict[str, str] = {}
    for err in errors:
        if err["type"] == "too_short" and any(
            len(e["loc"]) > len(err["loc"]) and tuple(e["loc"][: len(err["loc"])]) == tuple(err["loc"]) for e in errors
        ):
            continue  # "at least 1 item after validation": its items' own errors say why
        field, msg = _describe(err, errors, data, known_facts)
        if (
            not field
            and ": " in msg
            and msg.split(": ", 1)[0].replace(".", "").replace("[", "").replace("]", "").replace("_", "").isalnum()
        ):
            field, msg = msg.split(": ", 1)  # a check of the whole case that names its field
        out.setdefault(field, msg)  # a union reports each of its branches: one line for the field
    return list(out.items())


_MISSING = object()


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _describe(err: Any, errors: list[Any], data: Any, known_facts: Container[str] | None) -> tuple[str, str]:
    raw = tuple(err["loc"])
    loc, msg = describe_error(err)
    if err["type"] == "extra_forbidden" and raw and not (isinstance(raw[-1], str) and _SCHEMA_KEY.match(raw[-1])):
        # Not shaped like a key of the schema: it may be patient data (a member id written as a key).
        raw, loc, msg = (
            raw[:-1],
            loc[:-1] if loc and loc[-1] == raw[-1] else loc,
            "has an unknown key (not part of the schema)",
        )
    elif err["type"] != "missing" and loc and _value_at(data, loc) is None:
        msg = "is empty; fill it in"  # a key with no value (`name:`), as a skeleton from `lettergen init` has
    if len(raw) >= 2 and raw[0] == "facts" and isinstance(data.get("facts"), dict):
        key = raw[1]
        if len(raw) >= 4 and raw[2] == "value":  # a union: each branch reported; say what a value may be
            fact = data["facts"].get(key)
            value = fact.get("value") if isinstance(fact, dict) else None
            text = [e for e in errors if tuple(e["loc"][:3]) == raw[:3] and "str" in str(e["loc"][3])]
            if value is None:
                msg = "is empty; fill it in"
            elif isinstance(value, str) and text:
                msg = describe_error(text[0])[1]
            else:
                msg = "must be true or false, a number, a date (YYYY-MM-DD) or text"
            rest: tuple[Any, ...] = ("value",)
        elif "[key]" in raw:
            rest, msg = (), "is not a fact id (a key of facts is text)"
        else:
            rest = tuple(p for p in raw[2:] if not (isinstance(p, str) and p[:1].isupper()))
        return _join(fact_field(key, list(data["facts"]), known_facts), rest), msg
    return loc_path(loc), msg


def _join(head: str, rest: tuple[Any, ...]) -> str:
    tail = loc_path(rest)
    return f"{head}{'' if not tail or tail.startswith('[') else '.'}{tail}"


def fact_field(key: Any, keys: list[Any], known_facts: Container[str] | None = None) -> str:
    """``facts.<id>`` for a fact id the knowledge base declares, else ``facts (entry N)``: an unknown key may be
    patient data (a member id put there), and the message must not carry it."""
    if known_facts is None:
        known_facts = _declared_facts()
    if isinstance(key, str) and key in known_facts:
        return f"facts.{key}"
    return f"facts (entry {keys.index(key) + 1 if key in keys else '?'})"


def _declared_facts() -> Container[str]:
    try:
        from lettergen.knowledge.store import load_kb  # on the error path only

        return load_kb().questions
    except LettergenError:  # a broken knowledge base: its own error comes with the next step
        return ()
