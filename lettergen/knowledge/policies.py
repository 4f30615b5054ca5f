"""Criteria files: one service policy per YAML file (code card, questions, rules, bundles, checklist).

A policy belongs to a *set*: ``default`` for lettergen's own criteria, or a payer policy id
(``payer.policy`` in a case) for an overlay that replaces the default criteria for its codes.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from lettergen.knowledge.citations import Strict

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
_FACT_ID = r"^[a-z][a-z0-9_]*$"
FactType = Literal["bool", "number", "text", "choice", "date"]
Scalar = Union[bool, int, float, str]


class Question(Strict):
    """A fact the criteria need, asked the way a reviewer would ask it (cf. Da Vinci DTR)."""

    id: str = Field(pattern=_FACT_ID)
    prompt: str
    type: FactType
    unit: str | None = None
    choices: tuple[str, ...] = ()
    help: str | None = None
    # The range an answer must lie in, in ``unit`` (a pain score 0 to 10): every number question declares it,
    # so that no answer is infinite, not a number, or one no chart could hold.
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _choices_match_type(self) -> Question:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a question has choices exactly when its type is 'choice'")
        if self.unit and self.type != "number":
            raise ValueError("only number questions carry a unit")
        if self.type == "number":
            if self.min is None or self.max is None:
                raise ValueError("a number question declares its range: min and max (in its unit)")
            if self.min > self.max:
                raise ValueError("min is greater than max")
        elif self.min is not None or self.max is not None:
            raise ValueError("only number questions carry a range (min, max)")
        return self

    def range_text(self) -> str:
        """The declared range as a reader says it: ``from 0 to 10 points``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"from {self.min:g} to {self.max:g}{unit}"


class FactTest(Strict):
    """A test of one fact. With no operator it means ``is true``."""

    fact: str = Field(pattern=_FACT_ID)
    is_: Scalar | None = Field(default=None, alias="is")
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    unit: str | None = None

    model_config = Strict.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_operator(self) -> FactTest:
        ops = [x for x in (self.is_, self.gt, self.ge, self.lt, self.le, self.in_) if x is not None]
        if len(ops) > 1:
            raise ValueError(f"fact test on '{self.fact}' has more than one operator")
        return self

    def describe(self) -> str:
        for name, val in (("is", self.is_), ("in", self.in_)):
            if val is not None:
                return f"{self.fact} {name} {val}"
        for sym, val in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if val is not None:
                return f"{self.fact} {sym} {val:g}{' ' + self.unit if self.unit else ''}"
        return f"{self.fact} is true"


class DiagnosisTest(Strict):
    """True when any case diagnosis starts with one of these ICD-10-CM prefixes."""

    dx: tuple[str, ...] = Field(min_length=1)


class AllOf(Strict):
    all: tuple[Rule, ...] = Field(min_length=1)


class AnyOf(Strict):
    any: tuple[Rule, ...] = Field(min_length=1)


class NotOf(Strict):
    not_: Rule = Field(alias="not")

    model_config = Strict.model_config | {"populate_by_name": True}


# The recursive models refer to Rule before it exists; their validators are built on first use (Strict's
# defer_build), by which time it does. A knowledge base read from its cache never builds them.
Rule = Annotated[AllOf | AnyOf | NotOf | FactTest | DiagnosisTest, Field(union_mode="left_to_right")]


def rule_facts(rule: Rule) -> list[str]:
    """Fact ids a rule reads, in order of first use."""
    out: list[str] = []

    def walk(r: Rule) -> None:
        if isinstance(r, FactTest):
            if r.fact not in out:
                out.append(r.fact)
        elif isinstance(r, AllOf):
            for x in r.all:
                walk(x)
        elif isinstance(r, AnyOf):
            for x in r.any:
                walk(x)
        elif isinstance(r, NotOf):
            walk(r.not_)

    walk(rule)
    return out


class Criterion(Strict):
    """A test of the case. ``text`` says what must hold (for an exclusion: what rules the service out).

    ``basis`` names the cited payer policy or regulation findings that make an indication or exclusion a
    coverage condition (checked when the knowledge base loads: each is a payer_policy or regulation source).
    Guideline advice never gates: it is cited in ``citations`` as support, or becomes a consideration.
    ``ruled_out`` is what an exclusion's letter says when the record shows it does not apply, in plain words
    ("The patient has no distant metastases."), never the negated condition.
    """

    id: str = Field(pattern=_ID)
    text: str
    rule: Rule
    citations: tuple[str, ...] = Field(min_length=1)
    basis: tuple[str, ...] = ()
    ruled_out: str | None = None


class Bundle(Strict):
    code: str
    reason: str
    citations: tuple[str, ...] = Field(min_length=1)


class CitedText(Strict):
    text: str
    citations: tuple[str, ...] = ()


class Term(Strict):
    term: str
    definition: str


class CodeLabel(Strict):
    code: str
    label: str


class Card(Strict):
    """The code reference a coder reads: our own words, never the AMA descriptor."""

    covers: CitedText
    qualifying: tuple[CitedText, ...] = ()
    not_for: tuple[CitedText, ...] = ()
    terminology: tuple[Term, ...] = ()
    examples: tuple[CitedText, ...] = ()
    notes: tuple[CitedText, ...] = ()


class Memo(Strict):
    """Material for the determination memo: what the service changes, pitfalls, outcomes."""

    changes: tuple[CitedText, ...] = ()
    pitfalls: tuple[CitedText, ...] = ()
    outcomes: tuple[CitedText, ...] = ()


class Policy(Strict):
    id: str = Field(pattern=_ID)
    set: str = Field(default="default", pattern=_ID)
    title: str
    version: str
    effective: date
    review_by: date | None = None
    payer: str | None = None
    family: str
    codes: tuple[CodeLabel, ...] = Field(min_length=1)
    card: Card | None = None
    questions: tuple[Question, ...] = ()
    indications: tuple[Criterion, ...] = Field(min_length=1)
    exclusions: tuple[Criterion, ...] = ()
    # Supporting points from guidelines (a tumor board's review, a safe route for the needle): shown in the
    # letter when the record documents them, listed for the office when it does not; they never gate.
    considerations: tuple[Criterion, ...] = ()
    bundles: tuple[Bundle, ...] = ()
    checklist: tuple[str, ...] = Field(min_length=1)
    memo: Memo | None = None

    @model_validator(mode="after")
    def _coverage_conditions(self) -> Policy:
        for group, items in (("indications", self.indications), ("exclusions", self.exclusions)):
            for c in items:
                if not c.basis:
                    raise ValueError(f"{group}.{c.id}: names no basis (the payer policy or regulation finding)")
                if group == "exclusions" and not c.ruled_out:
                    raise ValueError(f"{group}.{c.id}: needs ruled_out, the words for when it does not apply")
        for c in self.considerations:
            if c.basis or c.ruled_out:
                raise ValueError(f"considerations.{c.id}: a consideration never gates, so it has no basis")
        return self

    def gating(self) -> tuple[Criterion, ...]:
        return self.indications + self.exclusions

    def rules_facts(self) -> list[str]:
        """Every fact id a rule of this policy reads (indications, exclusions, considerations)."""
        out: list[str] = []
        for c in self.indications + self.exclusions + self.considerations:
            out += [f for f in rule_facts(c.rule) if f not in out]
        return out

    @field_validator("codes")
    @classmethod
    def _normalise_codes(cls, codes: tuple[CodeLabel, ...]) -> tuple[CodeLabel, ...]:
        return tuple(CodeLabel(code=c.code.strip().upper(), label=c.label) for c in codes)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def summary(self) -> dict[str, Any]:
        """The row `criteria list --json` and `GET /v1/criteria` show for this policy."""
        return {
            "id": self.id,
            "set": self.set,
            "version": self.version,
            "effective": self.effective.isoformat(),
            "family": self.family,
            "codes": [c.code for c in self.codes],
            "title": self.title,
        }

    def label(self, code: str) -> str:
        return next(c.label for c in self.codes if c.code == code)

    def cited_ids(self) -> list[tuple[str, str]]:
        """(where, citation id) for every citation the file makes."""
        out: list[tuple[str, str]] = []
        for group, items in (
            ("indications", self.indications),
            ("exclusions", self.exclusions),
            ("considerations", self.considerations),
        ):
            for c in items:
                out += [(f"{group}.{c.id}", x) for x in dict.fromkeys(c.citations + c.basis)]
        out += [(f"bundles.{b.code}", x) for b in self.bundles for x in b.citations]
        texts: list[tuple[str, Any]] = []
        if self.card:
            texts.append(("card.covers", self.card.covers))
            for part in ("qualifying", "not_for", "examples", "notes"):
                texts += [(f"card.{part}", t) for t in getattr(self.card, part)]
        if self.memo:
            for part in ("changes", "pitfalls", "outcomes"):
                texts += [(f"memo.{part}", t) for t in getattr(self.memo, part)]
        out += [(where, x) for where, t in texts for x in t.citations]
        return out


# The patient's age in years: derived from the birth date and the date of service (or the letter date),
# never entered. Rules read it as a number fact: ``{fact: age, ge: 18, unit: years}``.
AGE = Question(
    id="age",
    prompt="Patient's age in years on the date of service (derived from the birth date)",
    type="number",
    unit="years",
    min=0,
    max=130,
)


class Vocabulary(Strict):
    """criteria/_vocabulary.yaml: what any case may say, whichever codes it requests.

    ``history`` declares facts a clinician commonly states (explicit negatives among them) that no coverage
    rule needs to read; they are accepted for any case and shown as clinical history. ``populations`` names
    the groups of patients a finding may be limited to (``Finding.populations``), each a rule on the case.
    """

    history: tuple[Question, ...] = ()
    populations: dict[str, Rule] = Field(default_factory=dict)
