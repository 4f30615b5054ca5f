"""Appeal deadlines: table-driven by plan type, level, urgency and the denial's dates, with exact due dates."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, run_cli

from lettergen import api
from lettergen.case.model import Case, case_from_mapping
from lettergen.decision.deadlines import add_months, all_citations, compute_deadline
from lettergen.knowledge.store import load_kb

BASE: dict[str, Any] = yaml.safe_load(CHORDOMA.read_text())


def _case(plan: str, level: int = 1, urgent: bool = False, **dates: str) -> Case:
    data = {**BASE, "payer": {**BASE["payer"], "plan_type": plan}}
    data["denial"] = {"date": "2026-11-02", "reference": "CLM-1", "reason": "Not medically necessary", "level": level}
    data["denial"].update({"urgent": urgent, **dates})
    return case_from_mapping(data, "case.yaml")


# plan, level, urgent, extra denial dates, kind, due, computed_from, expedited, decision_within
TABLE: list[tuple[str, int, bool, dict[str, str], str, str | None, str | None, bool, str | None]] = [
    ("erisa", 1, False, {}, "internal_appeal", "2027-05-01", "2026-11-02", False, None),
    ("erisa", 1, False, {"received": "2026-11-09"}, "internal_appeal", "2027-05-08", "2026-11-09", False, None),
    ("erisa", 1, True, {}, "expedited_internal_appeal", "2027-05-01", "2026-11-02", True, "72 hours"),
    ("commercial", 1, False, {}, "internal_appeal", "2027-05-01", "2026-11-02", False, None),
    ("aca_individual", 1, False, {}, "internal_appeal", "2027-05-01", "2026-11-02", False, None),
    ("erisa", 2, False, {}, "external_review", "2027-03-02", "2026-11-02", False, None),
    (
        "aca_individual",
        2,
        True,
        {"received": "2026-11-18"},
        "expedited_external_review",
        "2027-03-18",
        "2026-11-18",
        True,
        "72 hours",
    ),
    # 2026-10-30 + four months: no February 30, so the first day of the fifth month (Monday 2027-03-01).
    (
        "commercial",
        2,
        False,
        {"date": "2026-10-28", "received": "2026-10-30"},
        "external_review",
        "2027-03-01",
        "2026-10-30",
        False,
        None,
    ),
    # Four months from 2026-11-06 is Saturday 2027-03-06: moved to Monday 2027-03-08.
    ("commercial", 2, False, {"received": "2026-11-06"}, "external_review", "2027-03-08", "2026-11-06", False, None),
    ("erisa", 3, False, {}, "not_computed", None, None, False, None),
    # Original Medicare: 5-day receipt presumption applied when receipt is not documented.
    ("medicare", 1, False, {}, "redetermination", "2027-03-07", "2026-11-07", False, None),
    ("medicare", 1, False, {"received": "2026-11-04"}, "redetermination", "2027-03-04", "2026-11-04", False, None),
    ("medicare", 1, False, {"notice_date": "2026-11-03"}, "redetermination", "2027-03-08", "2026-11-08", False, None),
    ("medicare", 1, True, {}, "redetermination", "2027-03-07", "2026-11-07", False, None),
    ("medicare", 2, False, {}, "qic_reconsideration", "2027-05-06", "2026-11-07", False, None),
    ("medicare", 3, False, {}, "alj_hearing", "2027-01-06", "2026-11-07", False, None),
    ("medicare", 4, False, {}, "council_review", "2027-01-06", "2026-11-07", False, None),
    ("medicare", 5, False, {}, "not_computed", None, None, False, None),
    ("medicare_advantage", 1, False, {}, "ma_reconsideration", "2027-01-06", "2026-11-02", False, None),
    (
        "medicare_advantage",
        1,
        False,
        {"received": "2026-11-20"},
        "ma_reconsideration",
        "2027-01-06",
        "2026-11-02",
        False,
        None,
    ),
    ("medicare_advantage", 1, True, {}, "expedited_ma_reconsideration", "2027-01-06", "2026-11-02", True, None),
    ("medicare_advantage", 2, False, {}, "independent_review_entity", None, None, False, None),
    ("medicaid", 1, False, {}, "medicaid_plan_appeal", "2027-01-01", "2026-11-02", False, None),
    ("medicaid", 1, True, {}, "expedited_medicaid_appeal", "2027-01-01", "2026-11-02", True, "72 hours"),
    ("medicaid", 2, False, {}, "state_fair_hearing", "2027-01-31", "2026-11-02", False, None),
]


@pytest.mark.parametrize(
    ("plan", "level", "urgent", "dates", "kind", "due", "start", "expedited", "within"),
    TABLE,
    ids=[f"{r[0]}-L{r[1]}{'-urgent' if r[2] else ''}-{'-'.join(r[3].values()) or 'notice'}" for r in TABLE],
)
def test_deadline_table(
    plan: str,
    level: int,
    urgent: bool,
    dates: dict[str, str],
    kind: str,
    due: str | None,
    start: str | None,
    expedited: bool,
    within: str | None,
) -> None:
    d = compute_deadline(_case(plan, level, urgent, **dates), load_kb())
    assert (d.kind, d.due, d.computed_from) == (
        kind,
        date.fromisoformat(due) if due else None,
        date.fromisoformat(start) if start else None,
    )
    assert (d.expedited, d.decision_within) == (expedited, within)
    assert bool(d.citations) == (kind != "not_computed")
    assert d.notes or d.due is not None


@pytest.mark.parametrize(
    ("received", "presumed"), [(None, True), ("2026-11-05", False)], ids=["no-receipt", "receipt-documented"]
)
def test_medicare_receipt_presumption_is_stated(received: str | None, presumed: bool) -> None:
    extra = {"received": received} if received else {}
    d = compute_deadline(_case("medicare", **extra), load_kb())
    assert d.receipt_presumed is presumed
    assert ("5-day receipt presumption is applied" in d.notes[0]) is presumed


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-10-30", 4, "2027-03-01"),
        ("2026-01-31", 1, "2026-03-01"),
        ("2026-11-02", 4, "2027-03-02"),
        ("2026-08-31", 4, "2026-12-31"),
        ("2026-10-31", 2, "2026-12-31"),
        ("2026-12-31", 2, "2027-03-01"),
    ],
)
def test_add_months_follows_the_fifth_month_rule(start: str, months: int, expected: str) -> None:
    assert add_months(date.fromisoformat(start), months) == date.fromisoformat(expected)


def test_every_rule_cites_existing_findings() -> None:
    kb = load_kb()
    assert all(kb.has_citation(c) for c in all_citations())
    assert {kb.finding(c)[0].type for c in all_citations()} == {"regulation"}


def test_state_dependent_rules_say_so() -> None:
    ext = compute_deadline(_case("commercial", 2), load_kb())
    assert any("State" in n for n in ext.notes)
    fair = compute_deadline(_case("medicaid", 2), load_kb())
    assert any("120 days" in n for n in fair.notes)


def test_check_json_carries_the_deadline() -> None:
    code, out, err = run_cli("check", "examples/appeal-erisa-chordoma-biopsy.yaml", "--json")
    assert code == 0, err
    import json

    dl = json.loads(out)["deadline"]
    assert (dl["kind"], dl["due"], dl["computed_from"]) == ("internal_appeal", "2027-05-09", "2026-11-10")
    assert dl["basis"] and dl["citations"] == ["cfr-29-2560-503-1.appeal-window"]


def test_no_denial_no_deadline() -> None:
    assert api.check(api.load_case(CHORDOMA).case).deadline is None
