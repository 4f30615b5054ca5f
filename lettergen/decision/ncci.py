"""NCCI edits among the codes a case requests, from the CMS tables the office imported (lettergen.knowledge.ncci).

For the office only: ``lettergen check`` and the staff note report them, each cited to the table's version and
line; a payer letter never says anything of them, and no verdict depends on them. Without an imported database
there is no report.

- A PTP edit applies to two requested codes given on the same date (a service's date of service, else the
  letter date) when it is in force on that date: effective <= date < deletion.
- An MUE applies to a service whose units exceed the MUE value of the table in effect on its date.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lettergen.knowledge.ncci import MODIFIER_MEANING, FileRecord, NcciDb

_MAI = {
    1: "line edit: the units of one claim line",
    2: "date of service edit, policy: units beyond it on one date are not payable",
    3: "date of service edit, clinical: units beyond it on one date need documentation of the need",
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NcciTable(_Out):
    """An imported CMS file that the report read."""

    kind: Literal["ptp", "mue"]
    name: str
    sha256: str
    setting: str | None
    version: str | None
    stated_in: str | None

    @classmethod
    def of(cls, f: FileRecord) -> NcciTable:
        return cls(
            kind=f.kind, name=f.name, sha256=f.sha256, setting=f.setting, version=f.version, stated_in=f.stated_in
        )

    def title(self) -> str:
        what = "PTP edits" if self.kind == "ptp" else "MUE table"
        return f"CMS NCCI {what}, {self.setting or 'setting not stated'}, {self.version or 'version not stated'}"


class PtpConflict(_Out):
    column1: str  # the code eligible for payment
    column2: str  # the code denied with it unless the indicator allows a modifier
    modifier_indicator: Literal[0, 1, 9]
    meaning: str
    on: date
    effective: date
    deletion: date | None
    rationale: str
    table: NcciTable
    line: int

    def cite(self) -> str:
        return f"{self.table.title()}, {self.table.name} line {self.line}"


class MueExcess(_Out):
    code: str
    units: int
    mue: int
    adjudication_indicator: int | None
    indicator_text: str
    meaning: str
    on: date
    rationale: str
    table: NcciTable
    line: int

    def cite(self) -> str:
        return f"{self.table.title()}, {self.table.name} line {self.line}"


class NcciReport(_Out):
    """What the imported NCCI tables say of a case's codes: the tables read, the PTP conflicts, the units above
    an MUE."""

    database: str
    tables: tuple[NcciTable, ...]
    conflicts: tuple[PtpConflict, ...]
    mue: tuple[MueExcess, ...]


def ncci_report(services: list[tuple[str, int, date | None]], db: NcciDb, letter_day: date) -> NcciReport:
    """The report for ``services`` (code, units, date of service or None) against ``db``; a service without a
    date of service is taken to be given on ``letter_day``."""
    days = {code: on or letter_day for code, _, on in services}
    tables: dict[int, NcciTable] = {}
    conflicts: list[PtpConflict] = []
    for on in sorted(set(days.values())):
        codes = [c for c, d in days.items() if d == on]
        for hit in db.ptp_edits(codes, on):
            table = tables.setdefault(hit.file.id, NcciTable.of(hit.file))
            e = hit.edit
            conflicts.append(
                PtpConflict(
                    column1=e.column1,
                    column2=e.column2,
                    modifier_indicator=e.modifier,
                    meaning=MODIFIER_MEANING[e.modifier],
                    on=on,
                    effective=e.effective,
                    deletion=e.deletion,
                    rationale=e.rationale,
                    table=table,
                    line=e.line,
                )
            )
    excess: list[MueExcess] = []
    for code, units, _ in services:
        on = days[code]
        for m in db.mue_edits([code], on):
            table = tables.setdefault(m.file.id, NcciTable.of(m.file))
            if units > m.edit.value:
                excess.append(
                    MueExcess(
                        code=code,
                        units=units,
                        mue=m.edit.value,
                        adjudication_indicator=m.edit.mai,
                        indicator_text=m.edit.mai_text,
                        meaning=_MAI.get(m.edit.mai or 0, "adjudication indicator not stated"),
                        on=on,
                        rationale=m.edit.rationale,
                        table=table,
                        line=m.edit.line,
                    )
                )
    read = {f.id: NcciTable.of(f) for f in db.ptp_files()}
    for on in set(days.values()):
        read.update({f.id: NcciTable.of(f) for f in db.mue_files(on)})
    return NcciReport(
        database=str(db.path),
        tables=tuple(read[k] for k in sorted(read)),
        conflicts=tuple(conflicts),
        mue=tuple(excess),
    )


def conflict_text(c: PtpConflict) -> str:
    """One line for the terminal and the staff note."""
    return (
        f"{c.column2} with {c.column1} on {c.on.isoformat()}: NCCI PTP edit, modifier indicator "
        f"{c.modifier_indicator} ({c.meaning}); {c.column1} is column 1, {c.column2} column 2"
        + (f"; rationale: {c.rationale}" if c.rationale else "")
        + f" [{c.cite()}]"
    )


def mue_text(m: MueExcess) -> str:
    return (
        f"{m.code}: {m.units} units requested, above the MUE of {m.mue} on {m.on.isoformat()} "
        f"(adjudication indicator {m.indicator_text or 'not stated'}: {m.meaning})"
        + (f"; rationale: {m.rationale}" if m.rationale else "")
        + f" [{m.cite()}]"
    )


def report_lines(report: NcciReport) -> list[str]:
    """The report as lines of text (no markup): conflicts, units above an MUE, then the tables read."""
    lines = [conflict_text(c) for c in report.conflicts] + [mue_text(m) for m in report.mue]
    if not lines:
        lines.append("no NCCI edit applies to the requested codes and units")
    lines += [f"read: {t.title()} ({t.name}, sha256 {t.sha256[:12]})" for t in report.tables]
    return lines
