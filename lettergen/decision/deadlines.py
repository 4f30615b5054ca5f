"""Appeal deadlines: a pure function of the plan type, the appeal level, urgency and the denial's dates.

Every rule below cites findings in the citation store (regulations in ``citations/cfr-*.yaml``). Where the
deadline depends on something lettergen does not have (the plan's own notice, a State's process or number), the
due date is left out or marked conservative, and the notes say why: lettergen never guesses a date.

Levels (``denial.level``) are the level of the appeal the letter asks for:

=====================  ===========================  ==============================  =====================
plan type              level 1                      level 2                         later
=====================  ===========================  ==============================  =====================
commercial, erisa,     internal appeal, 180 days    external review, four months    (none)
aca_individual         from receipt                 from receipt of the final
                                                    internal denial
medicare               redetermination, 120 days    QIC reconsideration, 180 days   ALJ 60 days (3),
                       from receipt (5-day          from receipt                    Council 60 days (4)
                       presumption)
medicare_advantage     reconsideration, 65 days     independent entity: automatic   ALJ (not computed)
                       from the notice date         (no request to file)
medicaid               plan appeal, 60 days from    State fair hearing, 90 to 120   (none)
                       the notice date              days (State sets it)
=====================  ===========================  ==============================  =====================
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from lettergen.case.model import Case, Denial
from lettergen.decision.engine import Deadline
from lettergen.knowledge.store import KnowledgeBase

ERISA = "cfr-29-2560-503-1"
ACA = "cfr-45-147-136"
MEDICARE = "cfr-42-405-subpart-i"
MA = "cfr-42-422-subpart-m"
MEDICAID = "cfr-42-438-subpart-f"
GROUP_PLANS = ("commercial", "erisa", "aca_individual")
RECEIPT_PRESUMPTION_DAYS = 5


@dataclass(frozen=True)
class Rule:
    kind: str
    basis: str
    citations: tuple[str, ...]
    days: int | None = None  # calendar days added to the start date
    months: int | None = None  # calendar months (147.136(d)(2)(i) counting)
    start: str = "receipt"  # receipt | notice | none
    presume_receipt: bool = False  # Medicare: receipt presumed 5 days after the notice date
    weekend_rollover: bool = False
    decision_within: str | None = None
    expedited: bool = False
    notes: tuple[str, ...] = ()


_ERISA_180 = Rule(
    kind="internal_appeal",
    basis="Internal appeal: at least 180 days following receipt of the notice of adverse benefit determination.",
    citations=(f"{ERISA}.appeal-window",),
    days=180,
)
_EXTERNAL = Rule(
    kind="external_review",
    basis=(
        "External review: within four months after receipt of the final internal adverse benefit determination "
        "(federal process; a State process must allow at least as long)."
    ),
    citations=(f"{ACA}.external-review-window", f"{ACA}.state-external-review-minimum"),
    months=4,
    weekend_rollover=True,
    notes=(
        "Whether the State's or the federal external review process applies depends on the State and on whether the "
        "plan is insured or self-funded; a State process must allow at least four months, so this date is never "
        "later than the State's.",
    ),
)
_MEDICARE: dict[int, Rule] = {
    1: Rule(
        kind="redetermination",
        basis="Medicare redetermination: 120 calendar days from receipt of the notice of initial determination.",
        citations=(f"{MEDICARE}.redetermination-window", f"{MEDICARE}.redetermination-receipt"),
        days=120,
        presume_receipt=True,
    ),
    2: Rule(
        kind="qic_reconsideration",
        basis="Medicare reconsideration by the QIC: 180 calendar days from receipt of the redetermination notice.",
        citations=(f"{MEDICARE}.reconsideration-window",),
        days=180,
        presume_receipt=True,
    ),
    3: Rule(
        kind="alj_hearing",
        basis="Hearing before an administrative law judge: 60 calendar days after receipt of the QIC notice.",
        citations=(f"{MEDICARE}.alj-window",),
        days=60,
        presume_receipt=True,
        notes=("An ALJ hearing also needs the amount in controversy that the regulation sets; check it.",),
    ),
    4: Rule(
        kind="council_review",
        basis="Medicare Appeals Council review: 60 calendar days after receipt of the ALJ decision or dismissal.",
        citations=(f"{MEDICARE}.council-window",),
        days=60,
        presume_receipt=True,
    ),
}
_MA: dict[int, Rule] = {
    1: Rule(
        kind="ma_reconsideration",
        basis="Medicare Advantage reconsideration: 65 calendar days from the date of the organization's notice.",
        citations=(f"{MA}.reconsideration-window", f"{MA}.reconsideration-right"),
        days=65,
        start="notice",
    ),
    2: Rule(
        kind="independent_review_entity",
        basis="An upheld Medicare Advantage denial goes to the independent review entity without a request.",
        citations=(f"{MA}.independent-entity",),
        start="none",
        notes=("No filing deadline: the plan forwards the case; send any new evidence promptly.",),
    ),
}
_MEDICAID: dict[int, Rule] = {
    1: Rule(
        kind="medicaid_plan_appeal",
        basis=(
            "Medicaid managed care appeal: 60 calendar days from the date on the adverse benefit determination notice."
        ),
        citations=(f"{MEDICAID}.appeal-window",),
        days=60,
        start="notice",
        notes=(
            "Fee-for-service Medicaid (no managed care plan) has no plan appeal; the State's hearing rules apply "
            "instead, and lettergen does not hold them.",
        ),
    ),
    2: Rule(
        kind="state_fair_hearing",
        basis="State fair hearing: the State sets a window of 90 to 120 days from the plan's notice of resolution.",
        citations=(f"{MEDICAID}.fair-hearing-window",),
        days=90,
        start="notice",
        notes=(
            "The due date uses the shortest window a State may set (90 days); the State's own notice may allow up to "
            "120 days.",
        ),
    ),
}

RULES: tuple[Rule, ...] = (_ERISA_180, _EXTERNAL, *_MEDICARE.values(), *_MA.values(), *_MEDICAID.values())
EXPEDITED_CITATIONS: tuple[str, ...] = (
    f"{ERISA}.urgent-appeal-decision",
    f"{ERISA}.urgent-care-definition",
    f"{ACA}.expedited-external-review",
    f"{MEDICAID}.expedited-resolution",
)


def all_citations() -> list[str]:
    """Every finding a deadline rule can cite (the citation store checks they exist and counts them as cited)."""
    out = [c for r in RULES for c in r.citations] + list(EXPEDITED_CITATIONS) + [f"{ACA}.individual-market-erisa-rules"]
    return list(dict.fromkeys(out))


def add_months(d: date, months: int) -> date:
    """Same day ``months`` later; when that day does not exist, the first day of the month after (Oct 30 -> Mar 1)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    if d.day <= calendar.monthrange(year, month)[1]:
        return date(year, month, d.day)
    return date(year + (month == 12), month % 12 + 1, 1)


def _rule(case: Case, denial: Denial, letter_type: str | None) -> Rule | None:
    plan, level = case.payer.plan_type, denial.level
    if plan in GROUP_PLANS:
        if letter_type == "external_review" or level >= 2:
            return _EXTERNAL if level <= 2 or letter_type == "external_review" else None
        if plan == "aca_individual":
            return _with(
                _ERISA_180, expedited=False, citations=(*_ERISA_180.citations, f"{ACA}.individual-market-erisa-rules")
            )
        if plan == "commercial":
            note = "An insured plan is also subject to State insurance law, which may allow more time; lettergen "
            note += "does not hold State rules."
            return _with(_ERISA_180, expedited=False, notes=(note,))
        return _ERISA_180
    table = {"medicare": _MEDICARE, "medicare_advantage": _MA, "medicaid": _MEDICAID}[plan]
    return table.get(level)


# The urgent path of a level: (plans, kind of the standard rule) -> (expedited kind, decision time, added citations).
# A decision time of None means the expedited path exists but lettergen holds no verified time for it.
_EXPEDITED: tuple[tuple[frozenset[str], str, str, str | None, tuple[str, ...]], ...] = (
    (frozenset(GROUP_PLANS), "internal_appeal", "expedited_internal_appeal", "72 hours",
     (f"{ERISA}.urgent-appeal-decision", f"{ERISA}.urgent-care-definition")),
    (frozenset(GROUP_PLANS), "external_review", "expedited_external_review", "72 hours",
     (f"{ACA}.expedited-external-review",)),
    (frozenset({"medicaid"}), "medicaid_plan_appeal", "expedited_medicaid_appeal", "72 hours",
     (f"{MEDICAID}.expedited-resolution",)),
    (frozenset({"medicare_advantage"}), "ma_reconsideration", "expedited_ma_reconsideration", None, ()),
)  # fmt: skip


def _expedite(rule: Rule, case: Case) -> Rule:
    """The urgent path for the same level: who decides how fast, with its citations; or a note that none is held."""
    plan = case.payer.plan_type
    for plans, kind, fast_kind, within, cites in _EXPEDITED:
        if plan in plans and rule.kind == kind:
            if within is None:
                note = (
                    "An expedited reconsideration may be requested; lettergen holds no verified decision time for it."
                )
                return _with(rule, kind=fast_kind, notes=(*rule.notes, note))
            return _with(rule, kind=fast_kind, decision_within=within, citations=(*rule.citations, *cites))
    note = "The case is marked urgent, but lettergen holds no verified expedited rule for this level."
    return _with(rule, expedited=False, notes=(*rule.notes, note))


def _with(rule: Rule, **changes: object) -> Rule:
    from dataclasses import replace

    changes.setdefault("expedited", True)
    return replace(rule, **changes)  # type: ignore[arg-type]


def compute_deadline(case: Case, kb: KnowledgeBase | None = None, letter_type: str | None = None) -> Deadline:
    """The filing deadline for the appeal the case's denial calls for. Pure: no clock, no network."""
    denial = case.denial
    if denial is None:
        raise ValueError("compute_deadline needs a case with a denial")
    rule = _rule(case, denial, letter_type)
    if rule is None:
        return Deadline(
            kind="not_computed",
            due=None,
            basis=f"lettergen holds no verified rule for level {denial.level} of a {case.payer.plan_type} plan.",
            citations=[],
            computed_from=None,
            notes=["Use the deadline printed on the last decision notice."],
        )
    if denial.urgent:
        rule = _expedite(rule, case)
    if kb is not None:
        missing = [c for c in rule.citations if not kb.has_citation(c)]
        if missing:
            from lettergen.errors import DataError

            raise DataError("citations", missing[0], "a deadline rule cites a finding the store does not have")
    notice = denial.notice_date or denial.date
    notes = list(rule.notes)
    if rule.start == "none":
        return _deadline(rule, None, None, notes, denial.level, presumed=False)
    if rule.start == "notice":
        start = notice
        notes.insert(0, f"Counted from the date on the notice ({start.isoformat()}), as the regulation counts.")
    elif denial.received is not None:
        start = denial.received
        notes.insert(0, f"Counted from the documented date of receipt ({start.isoformat()}); no presumption applied.")
    elif rule.presume_receipt:
        start = notice + timedelta(days=RECEIPT_PRESUMPTION_DAYS)
        strict = notice + timedelta(days=rule.days or 0)
        notes.insert(
            0,
            f"The 5-day receipt presumption is applied: receipt is taken as {start.isoformat()}, 5 calendar days "
            f"after the notice date {notice.isoformat()}. Filing by {strict.isoformat()} (counted from the notice "
            "date itself) is the safer target.",
        )
    else:
        start = notice
        notes.insert(
            0,
            f"Counted from the notice date ({start.isoformat()}) because no date of receipt is documented; receipt "
            "is never earlier, so the true deadline is never earlier than this one. The plan's notice may allow more.",
        )
    if rule.days is not None:
        due = start + timedelta(days=rule.days)
    else:
        assert rule.months is not None
        due = add_months(start, rule.months)
    if rule.weekend_rollover and not business_day(due):
        moved = due
        while not business_day(moved):
            moved += timedelta(days=1)
        why = "a Federal holiday" if due.weekday() < 5 else f"a {due.strftime('%A')}"
        notes.append(f"{due.isoformat()} is {why}; the regulation moves the last day to {moved}.")
        due = moved
    elif due.weekday() >= 5:
        notes.append(f"{due.isoformat()} is a {due.strftime('%A')}; this rule states no extension, so file before it.")
    if rule.expedited:
        notes.append("Urgent: file now and ask for expedited review; the deadline is the latest day, not a target.")
    presumed = rule.presume_receipt and rule.start == "receipt" and denial.received is None
    return _deadline(rule, due, start, notes, denial.level, presumed=presumed)


def _deadline(
    rule: Rule, due: date | None, start: date | None, notes: list[str], level: int, *, presumed: bool
) -> Deadline:
    return Deadline(
        kind=rule.kind,
        due=due,
        basis=rule.basis,
        citations=list(rule.citations),
        computed_from=start,
        notes=notes,
        level=level,
        expedited=rule.expedited,
        decision_within=rule.decision_within,
        receipt_presumed=presumed,
    )


# Words of a deadline kind that a letter writes otherwise than in lower case.
_KIND_WORDS = {"ma": "Medicare Advantage", "qic": "QIC", "medicaid": "Medicaid"}


def deadline_words(kind: str) -> str:
    """A deadline kind as a letter or the staff note names it: ma_reconsideration -> Medicare Advantage
    reconsideration."""
    return " ".join(_KIND_WORDS.get(w, w) for w in kind.split("_"))


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday of a month (n = -1: the last)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def federal_holidays(year: int) -> set[date]:
    """The legal public holidays of 5 U.S.C. 6103(a), each on the day it is observed (a Saturday holiday the
    Friday before, a Sunday holiday the Monday after, per Executive Order 11582)."""
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    out = {
        _nth_weekday(year, 1, 0, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    }
    for d in fixed:
        out.add(d - timedelta(days=1) if d.weekday() == 5 else d + timedelta(days=1) if d.weekday() == 6 else d)
    return out


def business_day(d: date) -> bool:
    return d.weekday() < 5 and d not in federal_holidays(d.year)
