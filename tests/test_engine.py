"""The criteria engine: Kleene logic, verdicts, missing facts, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from lettergen.case.model import Case
from lettergen.decision.engine import Facts, evaluate
from lettergen.knowledge.policies import Question

Q = {
    "a": Question(id="a", prompt="A?", type="bool"),
    "b": Question(id="b", prompt="B?", type="bool"),
    "n": Question(id="n", prompt="Pain?", type="number", unit="points", min=0, max=10),
    "len": Question(id="len", prompt="Size?", type="number", unit="cm", min=0, max=100),
    "site": Question(id="site", prompt="Site?", type="choice", choices=("skull_base", "sacrum")),
}

BASE: dict[str, Any] = {
    "case_id": "t",
    "patient": {"name": "P", "birth_date": "1970-01-01"},
    "payer": {"name": "X", "plan_type": "commercial"},
    "provider": {"name": "D", "npi": "1234567893"},
    "diagnoses": [{"code": "C41.4"}],
    "services": [{"code": "20206"}],
}


def case_with(**facts: Any) -> Case:
    return Case.model_validate(
        {**BASE, "facts": {k: v if isinstance(v, dict) else {"value": v} for k, v in facts.items()}}
    )


def rule(data: Any) -> Any:
    from pydantic import TypeAdapter

    from lettergen.knowledge.policies import Rule

    return TypeAdapter(Rule).validate_python(data)


T, F, U = True, False, None

KLEENE = [
    # rule, facts, expected
    ({"fact": "a"}, {"a": True}, T),
    ({"fact": "a"}, {"a": False}, F),
    ({"fact": "a"}, {}, U),
    ({"fact": "a", "is": False}, {"a": False}, T),
    ({"not": {"fact": "a"}}, {}, U),
    ({"not": {"fact": "a"}}, {"a": True}, F),
    ({"all": [{"fact": "a"}, {"fact": "b"}]}, {"a": True, "b": True}, T),
    ({"all": [{"fact": "a"}, {"fact": "b"}]}, {"a": True}, U),
    ({"all": [{"fact": "a"}, {"fact": "b"}]}, {"a": False}, F),  # false dominates unknown
    ({"any": [{"fact": "a"}, {"fact": "b"}]}, {"b": True}, T),  # true dominates unknown
    ({"any": [{"fact": "a"}, {"fact": "b"}]}, {"a": False}, U),
    ({"any": [{"fact": "a"}, {"fact": "b"}]}, {"a": False, "b": False}, F),
    ({"fact": "n", "ge": 4, "unit": "points"}, {"n": 4}, T),
    ({"fact": "n", "ge": 4, "unit": "points"}, {"n": 3.5}, F),
    ({"fact": "n", "gt": 4, "unit": "points"}, {"n": 4}, F),
    ({"fact": "n", "lt": 4, "unit": "points"}, {}, U),
    ({"fact": "len", "ge": 3, "unit": "cm"}, {"len": {"value": 35, "unit": "mm"}}, T),
    ({"fact": "len", "ge": 3, "unit": "cm"}, {"len": {"value": 25, "unit": "mm"}}, F),
    ({"fact": "site", "in": ["skull_base"]}, {"site": "skull_base"}, T),
    ({"fact": "site", "in": ["skull_base"]}, {"site": "sacrum"}, F),
    ({"dx": ["C41"]}, {}, T),
    ({"dx": ["C41.0"]}, {}, F),
]


@pytest.mark.parametrize(("data", "facts", "expected"), KLEENE)
def test_kleene(data: Any, facts: dict[str, Any], expected: bool | None) -> None:
    case = case_with(**facts)
    values = {fid: (f.value, f.unit) for fid, f in case.facts.items()}
    assert evaluate(rule(data), Facts(values, tuple(d.code for d in case.diagnoses), Q)) is expected
