"""Per-policy fixtures: facts in, the verdict expected out (``lettergen criteria test``).

Kept beside the criteria, one file per policy: ``criteria/tests/<policy-id>.yaml``, a list of fixtures::

    - name: enlarging mass, no exclusion
      facts: {mass_enlarging: true, uncorrected_coagulopathy: false, pain_score: {value: 7, unit: points}}
      dx: [C49.22]              # optional: ICD-10-CM codes, for {dx: ...} rules and populations
      age: 45                   # optional: the patient's age in years on the date of service (default 50)
      payer_policy: bcbsal-mp-119   # optional: a payer's policy set; a payer overlay's own file defaults to it
      expect: {"20206": met}    # code -> met | not_met | insufficient

A fact named here that no rule reads, or a value of the wrong type, fails the fixture as it would a case.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Union

from pydantic import Field, RootModel

from lettergen.knowledge.citations import Strict

FIXTURES_DIR = "tests"  # under criteria/
FixtureValue = Union[bool, int, float, date, str]


class FixtureFact(Strict):
    value: FixtureValue
    unit: str | None = None


class CriteriaFixture(Strict):
    name: str = Field(min_length=1)
    facts: dict[str, FixtureValue | FixtureFact] = Field(default_factory=dict)
    payer_policy: str | None = None
    dx: tuple[str, ...] = ()
    age: int = Field(default=50, ge=0, le=130)
    expect: dict[str, Literal["met", "not_met", "insufficient"]] = Field(min_length=1)


class FixtureFile(RootModel[tuple[CriteriaFixture, ...]]):
    """A fixture file: a list of fixtures."""

    root: tuple[CriteriaFixture, ...] = Field(min_length=1)
