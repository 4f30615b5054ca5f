"""``lettergen eval cases``: the public clinical evaluation.

Each vignette in ``examples/vignettes/cases/`` is a case written from a published payer policy or regulation, and
``examples/vignettes/expected.yaml`` gives the verdict a careful reviewer applying that policy reaches for every
requested code, the appeal deadline where the case has a denial, and the source that justifies it. The
expectations were written before the engine ran; this module compares and reports agreement, code by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from lettergen.errors import DataError, LettergenError, UsageError
from lettergen.yamlio import parse_bytes, read_bytes


@dataclass
class Row:
    vignette: str
    code: str  # a service code, or "deadline"
    expected: str
    actual: str
    why: str

    @property
    def agrees(self) -> bool:
        return self.expected == self.actual


def run(folder: Path) -> list[Row]:
    from lettergen import api
    from lettergen.knowledge.store import load_kb

    expected_file = folder / "expected.yaml"
    if not expected_file.is_file():
        raise UsageError(f"{folder}: holds no expected.yaml (see examples/vignettes/README.md)")
    table: dict[str, Any] = parse_bytes(read_bytes(expected_file, DataError), expected_file, DataError)
    kb = load_kb()
    rows: list[Row] = []
    for name, spec in table.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("verdicts"), dict):
            raise DataError(str(expected_file), name, "needs a 'verdicts' mapping")
        why = str(spec.get("why", ""))
        try:
            decision = api.check(api.load_case(folder / "cases" / name, kb=kb).case, kb)
            actual = {s.code: s.verdict for s in decision.services}
            due = decision.deadline.due if decision.deadline else None
        except LettergenError as exc:
            actual, due = {}, None
            why = f"{why} (error: {exc})"
        for code, verdict in spec["verdicts"].items():
            rows.append(Row(name, str(code), str(verdict), actual.get(str(code), "missing"), why))
        if "deadline" in spec:
            want = spec["deadline"]
            want_s = want.isoformat() if isinstance(want, date) else str(want)
            rows.append(Row(name, "deadline", want_s, due.isoformat() if due else "none", why))
    return rows


def report(rows: list[Row]) -> str:
    agree = sum(r.agrees for r in rows)
    vignettes = len({r.vignette for r in rows})
    lines = [f"{'vignette':<56} {'code':<9} {'expected':<13} {'lettergen':<13}"]
    for r in rows:
        mark = "" if r.agrees else "  DISAGREES"
        lines.append(f"{r.vignette[:56]:<56} {r.code:<9} {r.expected:<13} {r.actual:<13}{mark}")
    lines.append("")
    lines.append(f"{agree} of {len(rows)} expectations agree, over {vignettes} vignettes")
    for r in rows:
        if not r.agrees:
            lines.append(f"  {r.vignette} {r.code}: expected {r.expected}, got {r.actual}; {r.why}")
    return "\n".join(lines)
