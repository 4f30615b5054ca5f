"""lettergen batch --csv: cases from a table, one a row; bad rows reported by row and column, never a value."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen.errors import CaseError
from lettergen.interfaces import table
from lettergen.knowledge.store import load_kb

ERISA = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"


def _cells(example: Path) -> dict[str, str]:
    """A case file's values as the cells of a table row (as an office would type them in)."""
    case = yaml.safe_load(example.read_text())
    cells = {"case_id": case["case_id"]}
    for section in ("letter", "patient", "payer", "provider", "denial"):
        for key, value in (case.get(section) or {}).items():
            if value is not None and not isinstance(value, list):
                cells[f"{section}.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    if case.get("denial", {}).get("codes"):
        cells["denial.codes"] = ";".join(case["denial"]["codes"])
    cells["diagnoses"] = ";".join(d["code"] for d in case["diagnoses"])
    cells["services"] = ";".join(s["code"] for s in case["services"])
    cells["services.site"] = ";".join(s.get("site", "") for s in case["services"])
    cells["services.laterality"] = ";".join(s.get("laterality", "") for s in case["services"])
    for fid, fact in case["facts"].items():
        cells[fid] = str(fact["value"]).lower() if isinstance(fact["value"], bool) else str(fact["value"])
        cells[f"{fid}.evidence"] = fact.get("evidence", "")
    return cells


def _write(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    columns = header or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _report(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "batch-report.csv").read_text())))


def test_one_good_row_and_one_bad_row(tmp_path: Path) -> None:
    _, header, _ = run_cli("init", "--csv", "--code", "20206", "--code", "38505")
    columns = next(csv.reader([header]))
    good = _cells(CHORDOMA)
    bad = {
        **good,
        "case_id": "row-bad",
        "patient.birth_date": "2999-01-01",
        "payer.plan_type": "SECRET-PLAN",
        "mass_enlarging": "SECRET-MAYBE",
        "diagnoses": "SECRET-DX;C79.89",
    }
    extra = [c for c in good if c not in columns]  # evidence columns, and a fact the codes do not ask about
    path = _write(tmp_path / "cases.csv", [good, bad], columns + extra)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("batch", "--csv", str(path), "-o", str(out), "--date", "2026-11-21")
    assert code == 2, stderr
    rows = _report(out)
    assert [(r["file"], r["case_id"], r["status"]) for r in rows] == [
        (f"{path} (row 2)", "chordoma-gluteal-001", "ok"),
        (f"{path} (row 3)", "", "failed"),
    ]
    assert rows[0]["verdicts"] == "20206=met;38505=insufficient"
    letter = (out / "chordoma-gluteal-001.lmn.md").read_text()
    assert "Jane Q. Sample" in letter and good["mass_enlarging.evidence"] in letter
    problems = rows[1]["error"].splitlines()
    assert sorted(p.split(": ")[1] for p in problems) == sorted(
        ["column patient.birth_date", "column payer.plan_type", "column mass_enlarging", "column diagnoses (item 1)"]
    )
    assert all(p.startswith(f"{path} (row 3): ") for p in problems)
    for text in (stdout, stderr, (out / "batch-report.csv").read_text(), (out / "batch-report.json").read_text()):
        assert "SECRET" not in text
    # The same table again: the good row is up to date, the bad one fails the same way.
    code, stdout, _ = run_cli("batch", "--csv", str(path), "-o", str(out), "--date", "2026-11-21", "--json")
    summary = json.loads(stdout)
    assert code == 2 and (summary["skipped"], summary["failed"]) == (1, 1)


def test_an_appeal_row_and_case_files_together(tmp_path: Path) -> None:
    path = _write(tmp_path / "appeals.csv", [_cells(ERISA)])
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("batch", str(CHORDOMA), "--csv", str(path), "-o", str(out), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["ok"] == 2
    assert (out / "appeal-erisa-chordoma-001.appeal.md").is_file()


CELLS = [
    ("patient.birth_date", "2999-01-01", "patient.birth_date"),
    ("patient.birth_date", "not a date", "patient.birth_date"),
    ("patient.name", "", "patient.name"),
    ("payer.plan_type", "gold", "payer.plan_type"),
    ("payer.state", "California", "payer.state"),
    ("provider.npi", "12345", "provider.npi"),
    ("diagnoses", "C41.4;Z00-NOT", "diagnoses (item 2)"),
    ("services", "20206;2020X", "services (item 2)"),
    ("services.site", "a;b;c", "services.site"),
    ("services.laterality", "left;upward", "services.laterality (item 2)"),
    ("mass_enlarging", "perhaps", "mass_enlarging"),
    ("mass_enlarging", "12", "mass_enlarging"),
    ("mass_enlarging.date", "2999-01-01", "mass_enlarging.date"),
    ("denial.level", "9", "denial.level"),
    ("denial.codes", "CO-50;XX-999", "denial.codes"),
    ("denial.urgent", "sometimes", "denial.urgent"),
]


@pytest.mark.parametrize(("column", "cell", "reported"), CELLS, ids=[f"{c[0]}={c[1]}" for c in CELLS])
def test_a_bad_cell_is_reported_by_row_and_column(column: str, cell: str, reported: str, tmp_path: Path) -> None:
    row = {**_cells(ERISA), column: cell}
    rows = table.read_table(_write(tmp_path / "t.csv", [_cells(ERISA), row]), load_kb().questions)
    assert table.load_row(rows[0], load_kb()).case.case_id == "appeal-erisa-chordoma-001"
    with pytest.raises(CaseError) as err:
        table.load_row(rows[1], load_kb())
    assert err.value.file == f"{tmp_path / 't.csv'} (row 3)"
    assert [f for f, _ in err.value.problems] == [f"column {reported}"], err.value.problems
    if len(cell) > 3 and cell not in ("C41.4;Z00-NOT", "CO-50;XX-999"):  # a code shaped like one may be named
        assert cell not in str(err.value)


HEADERS = [
    (["case_id", "patient.name", "payer.name", "provider.name", "diagnoses", "services", "SECRET NAME"], "column 7"),
    (["case_id", "patient.name", "payer.name", "provider.name", "diagnoses", "services", "not_a_fact"],
     "column 7 (not_a_fact)"),
    (["case_id", "patient.name", "payer.name", "provider.name", "diagnoses", "services", "services"],
     "column 7 (services)"),
    (["case_id", "patient.name", "payer.name", "provider.name", "diagnoses"], "header"),
]  # fmt: skip


@pytest.mark.parametrize(("columns", "where"), HEADERS, ids=[h[1] for h in HEADERS])
def test_a_bad_header_stops_the_batch(columns: list[str], where: str, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(",".join(columns) + "\n" + ",".join("x" for _ in columns) + "\n")
    code, _, err = run_cli("batch", "--csv", str(path), "-o", str(tmp_path / "out"))
    assert code == 2 and err.startswith(f"lettergen: {path}: {where}: "), err
    assert "SECRET" not in err and not (tmp_path / "out").exists()


def test_empty_rows_are_skipped_and_short_rows_read_as_empty_cells(tmp_path: Path) -> None:
    cells = _cells(CHORDOMA)
    path = tmp_path / "t.csv"
    text = ",".join(cells) + "\n" + ",,,\n" + ",".join(f'"{v}"' for v in cells.values()) + "\n\n"
    path.write_text(text)
    rows = table.read_table(path, load_kb().questions)
    assert [r.number for r in rows] == [3]
    short = ",".join(f'"{v}"' for v in list(cells.values())[:5])
    path.write_text(",".join(cells) + "\n" + short + "\n")
    with pytest.raises(CaseError) as err:
        table.load_row(table.read_table(path, load_kb().questions)[0], load_kb())
    assert ("column payer.name", "is required") in err.value.problems


def test_column_names_follow_the_case_fields() -> None:
    assert set(table.CASE_COLUMNS) >= {f"patient.{f}" for f in ("name", "birth_date", "member_id", "group_number")}
    pairs: list[tuple[str, Any]] = [
        ("facts.mass_enlarging.value", "mass_enlarging"),
        ("facts.mass_enlarging.evidence", "mass_enlarging.evidence"),
        ("diagnoses[0].code", "diagnoses (item 1)"),
        ("services[1].site", "services.site (item 2)"),
        ("denial.codes", "denial.codes"),
        ("patient.birth_date", "patient.birth_date"),
    ]
    assert [table.column_of(f) for f, _ in pairs] == [c for _, c in pairs]
