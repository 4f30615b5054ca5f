"""NCCI edits from the CMS tables a user imports (`lettergen kb import-ncci`), reported by `check` and the staff
note, never by the letter. The tables here are tests/data/ncci's hand-made fixture (invented rows, not CMS data)
and variants of it written by the tests."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, run_cli

from lettergen import api
from lettergen.errors import InputError
from lettergen.knowledge import ncci

FIXTURES = ROOT / "tests" / "data" / "ncci"
PTP = FIXTURES / "ptp_fixture.txt"
MUE = FIXTURES / "mue_fixture.txt"
HEADER = "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture tables imported into a database of the test's own, which is also the default one."""
    path = tmp_path / "ncci.sqlite"
    monkeypatch.setenv("LETTERGEN_NCCI_DB", str(path))
    ncci.import_files(path, [PTP, MUE])
    return path


def _case(example: str, **changes: object) -> api.Case:
    case = api.load_case(EXAMPLES / example).case
    return case.model_copy(update=changes) if changes else case


def _services(case: object, *rows: tuple[str, int, str | None]) -> object:
    from lettergen.case.model import Service

    services = tuple(Service(code=c, units=u, date_of_service=date.fromisoformat(d) if d else None) for c, u, d in rows)
    return case.model_copy(update={"services": services})  # type: ignore[attr-defined]


# -- what a file states about itself ----------------------------------------------------------------------------

STATED = [
    ("ccipra-v322r0-f1.txt", "practitioner", "version 32.2, revision 0"),
    ("ccioph-v313r1-f4.TXT", "outpatient hospital", "version 31.3, revision 1"),
    ("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", "practitioner", "effective 2026-07-01"),
    ("MCR_MUE_OutpatientHospitalServices_Eff_10-01-2025.csv", "outpatient hospital", "effective 2025-10-01"),
    ("MCR_MUE_DMESupplierServices_Eff_01-01-2026.csv", "DME supplier", "effective 2026-01-01"),
    ("medicare-ncci-2026q3-practitioner-ptp-edits.txt", "practitioner", "2026 Q3"),
    ("Fixture PTP edits, practitioner, version 0.1 revision 0", "practitioner", "version 0.1, revision 0"),
    ("edits.txt", None, None),
]


@pytest.mark.parametrize(("text", "setting", "version"), STATED)
def test_a_file_states_its_setting_and_version(text: str, setting: str | None, version: str | None) -> None:
    said = ncci.stated(text, "file name")
    assert (said.setting, said.version) == (setting, version)


# -- reading a file: header lines detected, rows checked ----------------------------------------------------------

ROW = "20982\t77013\t\t20100101\t*\t0\tMisuse of column two code with column one code"
PARSED = [
    # (file name, text, kind, header lines, edits, version)
    ("a.txt", f"{ROW}\n", "ptp", 0, 1, None),
    ("a.txt", f"Some notice\n{HEADER}\n\t\t\t\t*=no data\t0=not allowed\t\n{ROW}\n\n{ROW}\n", "ptp", 3, 2, None),
    ("ccipra-v322r0-f2.txt", f"Notice\r\n{HEADER}\r\n{ROW}\r\n", "ptp", 2, 1, "version 32.2, revision 0"),
    ("b.txt", f"Column1\tColumn2\tx\tEffective\tDeletion\tModifier\tRationale\n{ROW}", "ptp", 1, 1, None),
    (
        "m.csv",
        '"CPT only copyright notice, with a comma"\nHCPCS/CPT Code,Values,MAI,Rationale\n20206,1,2 Date,x\n',
        "mue",
        2,
        1,
        None,
    ),
    (
        "m.txt",
        "Notice\nHCPCS/CPT Code\tValues\tMAI\tRationale\n20206\t1\t3 Date of Service Edit: Clinical\tx\n",
        "mue",
        2,
        1,
        None,
    ),
    (
        "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
        "20206,3,1 Line Edit,x\r\n38505,2,,x\r\n",
        "mue",
        0,
        2,
        "effective 2026-04-01",
    ),
]


@pytest.mark.parametrize(("name", "text", "kind", "head", "count", "version"), PARSED)
def test_parse_finds_the_header_and_the_rows(
    name: str, text: str, kind: str, head: int, count: int, version: str | None
) -> None:
    parsed = ncci.parse(name, text.encode("cp1252"))
    assert (parsed.kind, parsed.header_lines, len(list(parsed.edits)), parsed.stated.version) == (
        kind,
        head,
        count,
        version,
    )


BAD_ROWS = [
    ("20982\t77013\t\t20100101\t*\t2\tx", "the modifier indicator is not 0, 1 or 9"),
    ("20982\t77013\t\t20101340\t*\t0\tx", "the effective date is not a date"),
    ("20982\t77013\t\t20100101\t2009\t0\tx", "the deletion date is neither a date"),
    ("20982\t77013\t\t20100101\t20090101\t0\tx", "the deletion date is before the effective date"),
    ("20982\t77013\tx\t20100101\t*\t0\tx", "the prior-1996 mark is neither * nor blank"),
    ("a trailing note", "is not a PTP edit"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ROWS)
def test_a_malformed_row_names_the_file_and_line_and_imports_nothing(tmp_path: Path, bad: str, message: str) -> None:
    broken = tmp_path / "ccipra-v322r0-f1.txt"
    broken.write_text(f"{HEADER}\n{ROW}\n{bad}\n")
    path = tmp_path / "ncci.sqlite"
    with pytest.raises(InputError, match=re.escape(f"ccipra-v322r0-f1.txt: line 3: {message}")):
        ncci.import_files(path, [MUE, broken])  # one transaction: the good file is not kept either
    assert ncci.open_db(path) is None


def test_a_file_with_no_edit_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "notes.txt"
    empty.write_text("Nothing here\nat all\n")
    with pytest.raises(InputError, match="no NCCI PTP edit or MUE row found"):
        ncci.import_files(tmp_path / "ncci.sqlite", [empty])


def test_import_records_name_hash_version_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "data" / "lettergen" / "ncci.sqlite"
    first = ncci.import_files(path, [PTP, MUE])
    again = ncci.import_files(path, [PTP])
    assert [r.new for r in first] == [True, True] and [r.new for r in again] == [False]
    ptp, mue = (r.file for r in first)
    assert (ptp.kind, ptp.name, ptp.setting, ptp.version, ptp.stated_in, ptp.header_lines) == (
        "ptp",
        "ptp_fixture.txt",
        "practitioner",
        "version 0.1, revision 0",
        "line 2",
        6,
    )
    assert (mue.kind, mue.version, mue.effective, mue.rows) == ("mue", "effective 2026-01-01", date(2026, 1, 1), 10)
    import hashlib

    assert ptp.sha256 == hashlib.sha256(PTP.read_bytes()).hexdigest()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM ptp").fetchone() == (8,)


# -- what check reports ---------------------------------------------------------------------------------------

# (case, services (code, units, date of service) or None for the example's own, letter date, PTP conflicts
# (column 1, column 2, indicator, fixture line), codes above their MUE)
REPORTS = [
    ("ablation-rfa-bone-metastasis.yaml", None, None, [("20982", "77013", 0, 7)], []),
    ("ablation-cryo-osteoid-osteoma.yaml", None, None, [("20983", "77002", 0, 8)], []),
    ("appeal-medicare-redetermination-sacral-biopsy.yaml", None, None, [("20225", "77012", 1, 9)], []),
    ("chordoma-gluteal-mass.yaml", None, None, [("20206", "38505", 1, 11)], []),  # the deleted edit is not
    ("chordoma-gluteal-mass.yaml", None, "2015-06-01", [("20206", "38505", 0, 10)], []),  # ...until its date
    ("chordoma-gluteal-mass.yaml", [("38505", 1, None), ("20206", 1, None)], None, [("20206", "38505", 1, 11)], []),
    ("chordoma-gluteal-mass.yaml", [("20206", 1, "2026-10-01"), ("38505", 1, "2026-10-02")], None, [], []),
    (
        "chordoma-gluteal-mass.yaml",
        [("20206", 1, "2026-10-01"), ("38505", 1, None)],
        "2026-10-01",
        [("20206", "38505", 1, 11)],
        [],
    ),
    (
        "chordoma-gluteal-mass.yaml",
        [("20206", 2, None), ("38505", 2, None)],
        None,
        [("20206", "38505", 1, 11)],
        ["20206"],
    ),
    ("chordoma-gluteal-mass.yaml", [("20206", 2, None)], "2025-06-01", [], []),  # no MUE table in effect yet
    ("ablation-rfa-bone-metastasis.yaml", [("20982", 1, None), ("77002", 1, None)], None, [], []),  # from 2027
    (
        "ablation-rfa-bone-metastasis.yaml",
        [("20982", 1, None), ("77002", 1, None)],
        "2027-02-01",
        [("20982", "77002", 0, 13)],
        [],
    ),
    ("ablation-cryo-osteoid-osteoma.yaml", [("20983", 1, None), ("77012", 1, None)], None, [], []),  # deleted on day 1
    (
        "ablation-cryo-osteoid-osteoma.yaml",
        [("20983", 1, None), ("77013", 1, None)],
        None,
        [("20983", "77013", 9, 14)],
        [],
    ),
    ("proton-skull-base-chordoma.yaml", [("77525", 3, None)], None, [], ["77525"]),
]


@pytest.mark.parametrize(("example", "services", "on", "conflicts", "mue"), REPORTS)
def test_check_reports_ncci_edits_in_force_on_the_date(
    db: Path,
    example: str,
    services: list[tuple[str, int, str | None]] | None,
    on: str | None,
    conflicts: list[tuple[str, str, int, int]],
    mue: list[str],
) -> None:
    case = _case(example)
    if services is not None:
        case = _services(case, *services)
    report = api.check_ncci(case, db, letter_date=date.fromisoformat(on) if on else None)
    assert report is not None
    got = [(c.column1, c.column2, c.modifier_indicator, c.line) for c in report.conflicts]
    assert got == conflicts
    assert [m.code for m in report.mue] == mue
    for c in report.conflicts:
        assert c.table.name == "ptp_fixture.txt" and c.table.version == "version 0.1, revision 0"
        assert f"ptp_fixture.txt line {c.line}" in c.cite()


def test_the_newest_version_of_a_setting_is_read(tmp_path: Path) -> None:
    old = tmp_path / "ccipra-v310r0-f1.txt"
    old.write_text(f"{HEADER}\n20206\t38505\t\t20100101\t*\t0\tOld edit\n")
    new = tmp_path / "ccipra-v311r0-f1.txt"
    new.write_text(f"{HEADER}\n20982\t77013\t\t20100101\t*\t0\tNew edit\n")
    hospital = tmp_path / "ccioph-v300r0-f1.txt"
    hospital.write_text(f"{HEADER}\n20206\t38505\t\t20100101\t*\t1\tHospital edit\n")
    path = tmp_path / "ncci.sqlite"
    ncci.import_files(path, [new, old, hospital])
    report = api.check_ncci(_case("chordoma-gluteal-mass.yaml"), path)
    assert report is not None
    assert [(c.rationale, c.table.setting) for c in report.conflicts] == [("Hospital edit", "outpatient hospital")]
    assert {t.name for t in report.tables} == {"ccipra-v311r0-f1.txt", "ccioph-v300r0-f1.txt"}


# -- without a database nothing changes; with one, check and the staff note say it, the letter never ----------


def test_without_a_database_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_NCCI_DB", str(tmp_path / "none.sqlite"))
    case = str(EXAMPLES / "ablation-rfa-bone-metastasis.yaml")
    assert api.check_ncci(_case("ablation-rfa-bone-metastasis.yaml")) is None
    code, out, _ = run_cli("check", case, "--json")
    assert code == 0 and "ncci" not in json.loads(out)
    code, out, _ = run_cli("check", case)
    assert code == 0 and "ncci" not in out
    draft = api.draft(api.load_case(case), ncci=None)
    assert "NCCI edits" not in draft.notes


def test_check_text_and_json_cite_the_table_and_line(db: Path) -> None:
    case = str(EXAMPLES / "ablation-rfa-bone-metastasis.yaml")
    code, out, err = run_cli("check", case)
    assert code == 0, err
    assert "77013 with 20982 on 2026-11-21: NCCI PTP edit, modifier indicator 0" in out
    assert "ptp_fixture.txt line 7" in out and "version 0.1, revision 0" in out
    code, out, err = run_cli("check", case, "--json", "--db", str(db))
    assert code == 0, err
    report = json.loads(out)["ncci"]
    assert [(c["column1"], c["column2"], c["modifier_indicator"], c["line"]) for c in report["conflicts"]] == [
        ("20982", "77013", 0, 7)
    ]
    assert report["conflicts"][0]["table"]["sha256"] == __import__("hashlib").sha256(PTP.read_bytes()).hexdigest()


def test_check_with_a_missing_db_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli("check", str(EXAMPLES / "chordoma-gluteal-mass.yaml"), "--db", str(tmp_path / "x.sqlite"))
    assert code == 2 and "--db" in err


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "ncci.sqlite"
    bogus.write_text("not sqlite")
    code, _, err = run_cli("check", str(EXAMPLES / "chordoma-gluteal-mass.yaml"), "--db", str(bogus))
    assert code == 2 and "not a lettergen NCCI database" in err


@pytest.mark.parametrize("fmt", ["md", "txt", "html"])
def test_the_staff_note_reports_ncci_and_the_letter_never(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli("draft", str(EXAMPLES / "chordoma-gluteal-mass.yaml"), "--format", fmt, "-o", str(out))
    assert code == 0, err
    note = (out / "chordoma-gluteal-001.lmn.notes.md").read_text()
    assert "## NCCI edits" in note and "38505 with 20206" in note and "ptp_fixture.txt line 11" in note
    letter = (out / f"chordoma-gluteal-001.lmn.{fmt}").read_text()
    for word in ("NCCI", "ptp_fixture", "modifier indicator", "Invented fixture row", "column 2"):
        assert word not in letter
    ledger = json.loads((out / "chordoma-gluteal-001.lmn.ledger.json").read_text())
    assert "ptp_fixture.txt line 11" in ledger["staff_note"]


def test_import_ncci_command(tmp_path: Path) -> None:
    path = tmp_path / "ncci.sqlite"
    code, out, err = run_cli("kb", "import-ncci", str(PTP), str(MUE), "--db", str(path))
    assert code == 0, err
    assert "imported: ptp_fixture.txt: 8 PTP edits, practitioner, version 0.1, revision 0" in out
    assert "imported: mue_fixture.txt: 10 MUE values, practitioner, effective 2026-01-01" in out
    code, out, _ = run_cli("kb", "import-ncci", str(PTP), "--db", str(path))
    assert code == 0 and "already imported: ptp_fixture.txt" in out
    code, out, _ = run_cli("kb", "ncci-files", "--db", str(path), "--json")
    assert code == 0 and [f["name"] for f in json.loads(out)["files"]] == ["ptp_fixture.txt", "mue_fixture.txt"]
    code, _, err = run_cli("kb", "import-ncci", str(tmp_path / "missing.txt"), "--db", str(path))
    assert code == 2 and "missing.txt" in err


def test_the_fixture_is_labelled_as_not_cms_data() -> None:
    for path in (PTP, MUE):
        assert "NOT CMS data" in path.read_text().splitlines()[0]
