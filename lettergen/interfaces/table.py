"""Cases from a table (``lettergen batch --csv FILE``): one row a case, for offices that keep cases in a spreadsheet.

The first row names the columns (``lettergen init --csv --code X`` writes it): the header fields of a case by
their path in the case file (``patient.birth_date``), and one column per fact, named by its id, which holds
the fact's value. A fact's evidence, source, date and unit may have columns of their own
(``mass_enlarging.evidence``). A list (``diagnoses``, ``services``, ``denial.codes``, ``enclosures``) holds
its items separated by ``;``; ``diagnoses.description`` and the ``services.*`` columns hold one item per
diagnosis or service code, in the same order. An empty cell is a field left out (a fact left out is unknown).

A bad row is reported by its row number (the header is row 1, as a spreadsheet counts) and column name, never
by a value; the other rows are drafted as any case. A problem with the header itself stops the batch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lettergen.errors import CaseError

SEPARATOR = ";"

# The header fields of a case, in the order `lettergen init --csv` writes them. "list" columns hold items
# separated by SEPARATOR; "item" columns hold one item per entry of the list they belong to.
CASE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "letter.type",
    "letter.date",
    "patient.name",
    "patient.birth_date",
    "patient.sex",
    "patient.member_id",
    "patient.group_number",
    "patient.medicare_number",
    "patient.address",
    "payer.name",
    "payer.plan_type",
    "payer.state",
    "payer.policy",
    "payer.address",
    "payer.fax",
    "provider.name",
    "provider.credentials",
    "provider.specialty",
    "provider.npi",
    "provider.organization",
    "provider.address",
    "provider.phone",
    "provider.fax",
    "diagnoses",
    "diagnoses.description",
    "services",
    "services.site",
    "services.units",
    "services.laterality",
    "services.date_of_service",
    "enclosures",
)
DENIAL_COLUMNS: tuple[str, ...] = (
    "denial.date",
    "denial.reference",
    "denial.reason",
    "denial.codes",
    "denial.level",
    "denial.urgent",
    "denial.notice_date",
    "denial.received",
    "denial.category",
)
# Columns read though `lettergen init --csv` does not write them.
OTHER_COLUMNS: tuple[str, ...] = ("letter.date_style",)
LISTS = {"diagnoses": "code", "services": "code"}  # a list of mappings: the column holds each one's key
ITEMS = {c: c.split(".")[0] for c in CASE_COLUMNS if c.startswith(("diagnoses.", "services."))}
PLAIN_LISTS = ("denial.codes", "enclosures")
FACT_PARTS = ("evidence", "source", "date", "unit")
_FACT_COLUMN = re.compile(r"([a-z][a-z0-9_]*)(?:\.(" + "|".join(FACT_PARTS) + r"))?\Z")
_SAFE_NAME = re.compile(r"[a-z][a-z0-9_.]{0,79}\Z")  # a column name shaped like one: safe to name in a message


def header(fact_ids: Iterable[str], appeal: bool = False) -> list[str]:
    """The columns of a table for cases with these facts (``lettergen init --csv``)."""
    return [*CASE_COLUMNS, *(DENIAL_COLUMNS if appeal else ()), *fact_ids]


@dataclass(frozen=True)
class Row:
    """One row of a table: its case mapping, or the problems that kept it from being one."""

    file: str
    number: int  # as a spreadsheet counts: the header is row 1
    data: dict[str, Any] = field(default_factory=dict)
    problems: tuple[tuple[str, str], ...] = ()  # (column, problem), found while reading the cells

    @property
    def label(self) -> str:
        """The row's name in a batch report (its file column)."""
        return f"{self.file} (row {self.number})"

    def sha256(self) -> str:
        canonical = json.dumps(self.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _column_name(name: str, index: int) -> str:
    """How a message names a column: by its name when shaped like one (never a value put in the header)."""
    return f"column {index + 1} ({name})" if _SAFE_NAME.match(name) else f"column {index + 1}"


def read_table(path: Path, questions: Mapping[str, Any]) -> list[Row]:
    """Every row of a CSV table of cases (empty rows skipped). A problem with the file or its header is a
    CaseError naming every bad column; a problem with a row is kept in that row (see :func:`load_row`)."""
    from lettergen.yamlio import decode_text, read_bytes

    file = str(path)
    text = decode_text(read_bytes(path, CaseError), file, CaseError)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        names = [n.strip() for n in next(reader, [])]
    except csv.Error as exc:
        raise CaseError(file, "row 1", f"is not valid CSV ({exc})") from None
    _check_header(file, names, questions)
    rows = []
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):
            if any(c.strip() for c in cells):
                rows.append(_row(file, number, names, cells, questions))
    except csv.Error as exc:  # a quote left open: the rest of the file cannot be read as rows
        raise CaseError(file, f"row {number + 1}", f"is not valid CSV ({exc})") from None
    if not rows:
        raise CaseError(file, "", "has no rows of cases under its header")
    return rows


def _check_header(file: str, names: list[str], questions: Mapping[str, Any]) -> None:
    known = {*CASE_COLUMNS, *DENIAL_COLUMNS, *OTHER_COLUMNS}
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        where = _column_name(name, i)
        fact = _FACT_COLUMN.match(name)
        if not name:
            continue  # a column with no name must have empty cells (checked row by row)
        if name in seen:
            problems.append((where, "is named twice in the header"))
        elif name not in known and not (fact and fact.group(1) in questions):
            problems.append((where, "is not a case field or a fact id (see 'lettergen init --csv')"))
        seen.add(name)
    for name in ("case_id", "patient.name", "payer.name", "provider.name", "diagnoses", "services"):
        if name not in seen:
            problems.append(("header", f"has no column {name}"))
    if not names or not any(names):
        problems = [("row 1", "is empty: the first row names the columns")]
    if problems:
        raise CaseError.many(file, problems)


def _row(file: str, number: int, names: list[str], cells: list[str], questions: Mapping[str, Any]) -> Row:
    problems: list[tuple[str, str]] = []
    if len(cells) > len(names):
        problems.append(("", f"has {len(cells)} cells; the header names {len(names)} columns"))
    values = {}
    for i, cell in enumerate(cells[: len(names)]):
        cell = cell.strip()
        if not cell:
            continue
        if not names[i]:
            problems.append((f"column {i + 1}", "has a value but no name in the header"))
            continue
        values[names[i]] = cell
    # The required sections are there even when every cell of one is empty, so that each required column of
    # it is reported rather than the section.
    data: dict[str, Any] = {"patient": {}, "payer": {}, "provider": {}}
    for name, cell in values.items():
        try:
            _put(data, name, cell, values, questions)
        except ValueError as exc:
            problems.append((name, str(exc)))
    return Row(file=file, number=number, data=data, problems=tuple(problems))


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(SEPARATOR)]


def _put(data: dict[str, Any], name: str, cell: str, values: Mapping[str, str], questions: Mapping[str, Any]) -> None:
    """Set the case field of one cell; ValueError (a message without the value) for a cell that cannot be one."""
    if name in LISTS:
        entries = data.setdefault(name, [])
        codes = _split(cell)
        while len(entries) < len(codes):
            entries.append({})
        for entry, code in zip(entries, codes, strict=False):
            if code:
                entry[LISTS[name]] = code
        return
    if name in ITEMS:
        owner = ITEMS[name]
        count = len(_split(values[owner])) if owner in values else 0
        parts = _split(cell)
        if len(parts) > count:
            raise ValueError(f"has {len(parts)} items for {count} in column {owner}")
        entries = data.setdefault(owner, [])
        while len(entries) < count:
            entries.append({})
        key = name.split(".", 1)[1]
        for entry, part in zip(entries, parts, strict=False):
            if part:
                entry[key] = part
        return
    if name in PLAIN_LISTS:
        value: Any = [p for p in _split(cell) if p]
    else:
        value = cell
    fact = _FACT_COLUMN.match(name)
    if name not in (*CASE_COLUMNS, *DENIAL_COLUMNS, *OTHER_COLUMNS) and fact:
        fid, part = fact.group(1), fact.group(2)
        entry = data.setdefault("facts", {}).setdefault(fid, {})
        entry[part or "value"] = value if part else _fact_value(questions[fid], cell)
        return
    node = data
    *parents, last = name.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _fact_value(question: Any, cell: str) -> Any:
    """A cell as the value of a fact of the question's type (the text of a cell is typed by its question)."""
    if question.type == "bool":
        word = cell.lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError("must be true or false (or yes or no)")
    if question.type == "number":
        try:
            number = int(cell) if re.fullmatch(r"[-+]?[0-9]{1,15}", cell) else float(cell)
        except ValueError:
            raise ValueError(f"must be a number{' in ' + question.unit if question.unit else ''}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if question.type == "date":
        try:
            return date.fromisoformat(cell)
        except ValueError:
            raise ValueError("must be a date, YYYY-MM-DD") from None
    return cell


def column_of(field_path: str) -> str:
    """The column of a table that holds a case field (``diagnoses[1].code`` is in column diagnoses, item 2)."""
    fact = re.match(r"facts\.([a-z][a-z0-9_]*)(?:\.([a-z_]+))?", field_path)
    if fact:
        part = fact.group(2)
        return fact.group(1) if part in (None, "value") else f"{fact.group(1)}.{part}"
    item = re.match(r"(diagnoses|services)\[(\d+)\](?:\.([a-z_]+))?", field_path)
    if item:
        owner, index, key = item.group(1), int(item.group(2)), item.group(3)
        column = owner if key in (None, LISTS[owner]) else f"{owner}.{key}"
        return f"{column} (item {index + 1})"
    return re.sub(r"\[\d+\]", "", field_path)


def load_row(row: Row, kb: Any) -> Any:
    """The LoadedCase of a row, or a CaseError naming the row and every bad column of it (never a value)."""
    from lettergen import api
    from lettergen.case.model import case_from_mapping
    from lettergen.decision.engine import check_facts

    problems = [(_where(column), problem) for column, problem in row.problems]
    bad = {column for column, _ in row.problems}
    try:
        case = case_from_mapping(row.data, row.label, kb.questions)
    except CaseError as exc:
        found = [(_where(column_of(f)), p) for f, p in exc.problems]
        # A cell already reported was left out of the mapping: what its absence causes is not said again.
        kept = [(w, p) for w, p in found if w.removeprefix("column ").split(" (")[0] not in bad]
        problems += kept if kept or problems else found
        raise CaseError.many(row.label, problems, exc.more) from None
    if problems:
        raise CaseError.many(row.label, problems)
    try:
        check_facts(case, kb, row.label)
    except CaseError as exc:
        raise CaseError.many(row.label, [(_where(column_of(f)), p) for f, p in exc.problems], exc.more) from None
    return api.LoadedCase(case=case, sha256=row.sha256(), file=row.label)


def _where(column: str) -> str:
    return f"column {column}" if column and not column.startswith("column ") else column
