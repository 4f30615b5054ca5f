"""CMS NCCI edits that a user downloads: procedure-to-procedure (PTP) pairs and medically unlikely edits (MUE),
imported into a local SQLite database (``lettergen kb import-ncci``) and read back for the codes of one case.

lettergen ships no CMS table. The files are the ones CMS posts each quarter on its Medicare NCCI pages (see the
README, "NCCI edits"); the tests use a small hand-made fixture of invented rows.

- A PTP file is tab-separated text: a few header lines, then one edit a line: column 1 code, column 2 code, the
  "in existence prior to 1996" mark (``*`` or blank), effective date (YYYYMMDD), deletion date (YYYYMMDD, or
  ``*`` while the edit is in force), modifier indicator (0, 1 or 9) and the PTP edit rationale.
- An MUE file is comma- (CMS's CSV) or tab-separated: a preamble, a header row, then one code a row: the code,
  its MUE value (units of service), the MUE adjudication indicator ("1 Line Edit", "2 Date of Service Edit:
  Policy", "3 Date of Service Edit: Clinical") and the rationale.

The header lines are recognised as whatever comes before the first row shaped like an edit; after it, every
non-blank line must be one (a line that is not is an error naming the file and line, and nothing is imported).
Each file is recorded with its name, sha256, the setting (practitioner, outpatient hospital, DME supplier) and
the version, quarter or effective date it states in its name or header lines, and each edit with its line.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lettergen.errors import DataError, InputError, OutputError

if TYPE_CHECKING:  # sqlite3 and csv load only where a database is read or written: `lettergen check` starts fast
    import sqlite3

Kind = Literal["ptp", "mue"]
SCHEMA_VERSION = "1"
_CODE = re.compile(r"[0-9A-Z]{5}\Z")
_YMD = re.compile(r"[0-9]{8}\Z")
MODIFIER_MEANING = {
    0: "not allowed: the two codes cannot be billed together, and no modifier bypasses the edit",
    1: "allowed: billed together only for a distinct service the record documents, with an NCCI "
    "PTP-associated modifier (such as 59 or XE, XP, XS, XU) on the column 2 code",
    9: "not applicable: the edit does not apply",
}
SETTINGS = {"pra": "practitioner", "oph": "outpatient hospital"}


def default_db_path() -> Path:
    """Where the NCCI database lives: ``LETTERGEN_NCCI_DB``, else the user's data folder
    (``$XDG_DATA_HOME/lettergen/ncci.sqlite``, ``~/.local/share/lettergen/ncci.sqlite`` by default)."""
    env = os.environ.get("LETTERGEN_NCCI_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lettergen" / "ncci.sqlite"


# -- what a file states about itself ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stated:
    """The setting and version a file states, and where (``file name`` or ``line N``)."""

    setting: str | None = None
    version: str | None = None  # "version 32.2, revision 0", "2026 Q3", "effective 2026-07-01"
    version_key: tuple[int, ...] = ()  # orders versions of one setting; () when none is stated
    effective: date | None = None  # MUE tables: the day the table takes effect
    stated_in: str | None = None


_PTP_NAME = re.compile(r"cci(pra|oph)[-_ ]?v(\d+)(\d)r(\d+)", re.IGNORECASE)
_VERSION = re.compile(r"\bversion\s*(\d+)\.(\d+)(?:\s*,?\s*revision\s*(\d+))?", re.IGNORECASE)
_QUARTER = re.compile(r"(?<![0-9a-z])(?:(20\d\d)[-_ ]?q([1-4])|q([1-4])[-_ ]?(20\d\d))(?![0-9a-z])", re.IGNORECASE)
_EFFECTIVE = re.compile(r"(?<![a-z])eff(?:ective)?[-_ :]*(\d{1,2})[-/_](\d{1,2})[-/_](\d{4})", re.IGNORECASE)
_MUE_SETTING = re.compile(r"(practitioner|outpatient[-_ ]?hospital|facility|dme[-_ ]?supplier)", re.IGNORECASE)


def stated(text: str, where: str) -> Stated:
    """What ``text`` (a file name or a header line) says of the file's setting and version."""
    setting: str | None = None
    m = _PTP_NAME.search(text)
    if m:
        setting = SETTINGS[m.group(1).lower()]
        major, minor, rev = int(m.group(2)), int(m.group(3)), int(m.group(4))
        return Stated(setting, f"version {major}.{minor}, revision {rev}", (major, minor, rev), None, where)
    s = _MUE_SETTING.search(text)
    if s:
        word = s.group(1).lower().replace("_", "").replace("-", "").replace(" ", "")
        setting = {"outpatienthospital": "outpatient hospital", "facility": "outpatient hospital"}.get(word, word)
        setting = "DME supplier" if setting.startswith("dme") else setting
    m = _VERSION.search(text)
    if m:
        major, minor, rev = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        return Stated(setting, f"version {major}.{minor}, revision {rev}", (major, minor, rev), None, where)
    e = _EFFECTIVE.search(text)
    if e:
        try:
            eff = date(int(e.group(3)), int(e.group(1)), int(e.group(2)))
        except ValueError:
            eff = None
        if eff is not None:
            return Stated(setting, f"effective {eff.isoformat()}", (eff.year, eff.month, eff.day), eff, where)
    q = _QUARTER.search(text)
    if q:
        year, quarter = (q.group(1), q.group(2)) if q.group(1) else (q.group(4), q.group(3))
        return Stated(setting, f"{year} Q{quarter}", (int(year), int(quarter)), None, where)
    return Stated(setting, None, (), None, where if setting else None)


def _merge(first: Stated, second: Stated) -> Stated:
    """The file name's statement, completed by the header's."""
    if first.version is None and second.version is not None:
        return Stated(first.setting or second.setting, *_rest(second))
    return Stated(first.setting or second.setting, *_rest(first))


def _rest(s: Stated) -> tuple[str | None, tuple[int, ...], date | None, str | None]:
    return s.version, s.version_key, s.effective, s.stated_in


# -- parsing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PtpEdit:
    line: int
    column1: str
    column2: str
    prior_1996: bool
    effective: date
    deletion: date | None
    modifier: int
    rationale: str


@dataclass(frozen=True)
class MueEdit:
    line: int
    code: str
    value: int
    mai: int | None
    mai_text: str
    rationale: str


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # CMS's files are Windows-1252 (the CPT mark of the AMA notice)
        return raw.decode("cp1252", errors="replace")


def _ymd(value: str) -> date | None:
    if not _YMD.match(value):
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _is_ptp(fields: Sequence[str]) -> bool:
    return (
        len(fields) >= 6
        and bool(_CODE.match(fields[0].strip().upper()))
        and bool(_CODE.match(fields[1].strip().upper()))
        and bool(_YMD.match(fields[3].strip()))
    )


def _is_mue(fields: Sequence[str]) -> bool:
    return len(fields) >= 3 and bool(_CODE.match(fields[0].strip().upper())) and fields[1].strip().isdigit()


def _ptp_edit(fields: Sequence[str], line: int) -> PtpEdit | str:
    """The edit on a data line, or what is wrong with it."""
    f = [x.strip() for x in fields] + [""]
    if not _is_ptp(fields):
        return (
            "is not a PTP edit (tab-separated: column 1 code, column 2 code, prior-1996 mark, effective date "
            "YYYYMMDD, deletion date YYYYMMDD or *, modifier indicator 0/1/9, rationale)"
        )
    if f[2] not in ("", "*"):
        return "the prior-1996 mark is neither * nor blank"
    effective = _ymd(f[3])
    if effective is None:
        return "the effective date is not a date (YYYYMMDD)"
    deletion = None
    if f[4] not in ("", "*"):
        deletion = _ymd(f[4])
        if deletion is None:
            return "the deletion date is neither a date (YYYYMMDD) nor *"
        if deletion < effective:
            return "the deletion date is before the effective date"
    if f[5] not in ("0", "1", "9"):
        return "the modifier indicator is not 0, 1 or 9"
    return PtpEdit(line, f[0].upper(), f[1].upper(), f[2] == "*", effective, deletion, int(f[5]), f[6])


def _mue_edit(fields: Sequence[str], line: int) -> MueEdit | str:
    f = [x.strip() for x in fields] + ["", ""]
    if not _is_mue(fields):
        return "is not an MUE row (code, MUE value, MUE adjudication indicator, rationale)"
    mai_text = f[2]
    mai = int(mai_text[0]) if mai_text[:1] in ("1", "2", "3") else None
    if mai is None and mai_text:
        return "the MUE adjudication indicator does not start with 1, 2 or 3"
    return MueEdit(line, f[0].upper(), int(f[1]), mai, mai_text, f[3])


@dataclass
class Parsed:
    kind: Kind
    stated: Stated
    header_lines: int
    edits: Iterator[PtpEdit] | Iterator[MueEdit]


def _mue_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    import csv

    delimiter = "\t" if any(line.count("\t") >= 2 for line in text.splitlines()[:200]) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def parse(name: str, raw: bytes) -> Parsed:
    """Read one downloaded file: which kind it is (PTP or MUE), what it states, and its edits (a generator that
    raises InputError naming the file and line at the first malformed row)."""
    text = _decode(raw)
    lines = text.splitlines()
    first_ptp = next((i for i, line in enumerate(lines) if _is_ptp(line.split("\t"))), None)
    mue_rows = _mue_rows(text)
    first_mue = next((n for n, row in mue_rows if _is_mue(row)), None)
    if first_ptp is None and first_mue is None:
        raise InputError(f"{name}: no NCCI PTP edit or MUE row found: is this a CMS NCCI table (text or CSV)?")
    kind: Kind = "ptp" if first_mue is None or (first_ptp is not None and first_ptp + 1 <= first_mue) else "mue"
    head_count = (first_ptp if kind == "ptp" else (first_mue or 1) - 1) or 0
    said = stated(Path(name).name, "file name")
    for i, line in enumerate(lines[:head_count]):
        if said.version is not None and said.setting is not None:
            break
        said = _merge(said, stated(line, f"line {i + 1}"))
    if kind == "ptp":
        return Parsed(kind, said, head_count, _ptp_edits(name, lines, head_count))
    return Parsed(kind, said, head_count, _mue_edits(name, text, head_count))


def _ptp_edits(name: str, lines: list[str], start: int) -> Iterator[PtpEdit]:
    for i in range(start, len(lines)):
        if not lines[i].strip():
            continue
        edit = _ptp_edit(lines[i].split("\t"), i + 1)
        if isinstance(edit, str):
            raise InputError(f"{name}: line {i + 1}: {edit}")
        yield edit


def _mue_edits(name: str, text: str, head_count: int) -> Iterator[MueEdit]:
    for line, row in _mue_rows(text):
        if line <= head_count or not any(x.strip() for x in row):
            continue
        edit = _mue_edit(row, line)
        if isinstance(edit, str):
            raise InputError(f"{name}: line {line}: {edit}")
        yield edit


# -- the database -------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
    setting TEXT, version TEXT, version_key TEXT NOT NULL, effective TEXT, stated_in TEXT,
    header_lines INTEGER NOT NULL, rows INTEGER NOT NULL, imported TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ptp (
    file_id INTEGER NOT NULL REFERENCES files(id), line INTEGER NOT NULL, column1 TEXT NOT NULL,
    column2 TEXT NOT NULL, prior_1996 INTEGER NOT NULL, effective TEXT NOT NULL, deletion TEXT,
    modifier INTEGER NOT NULL, rationale TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ptp_pair ON ptp (column1, column2);
CREATE TABLE IF NOT EXISTS mue (
    file_id INTEGER NOT NULL REFERENCES files(id), line INTEGER NOT NULL, code TEXT NOT NULL,
    value INTEGER NOT NULL, mai INTEGER, mai_text TEXT NOT NULL, rationale TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mue_code ON mue (code);
"""


@dataclass(frozen=True)
class FileRecord:
    """One imported file as the database records it."""

    id: int
    kind: Kind
    name: str
    sha256: str
    setting: str | None
    version: str | None
    version_key: tuple[int, ...]
    effective: date | None
    stated_in: str | None
    header_lines: int
    rows: int
    imported: str

    def title(self) -> str:
        """How a finding cites the file: ``CMS NCCI PTP edits, practitioner, version 32.2, revision 0 (<name>)``."""
        what = "PTP edits" if self.kind == "ptp" else "MUE table"
        bits = [f"CMS NCCI {what}", self.setting or "setting not stated", self.version or "version not stated"]
        return f"{', '.join(bits)} ({self.name})"


@dataclass(frozen=True)
class Imported:
    file: FileRecord
    new: bool  # False: a file with the same sha256 was imported before; nothing was added


def _key_text(key: tuple[int, ...]) -> str:
    return ".".join(str(k) for k in key)


def _key_of(text: str) -> tuple[int, ...]:
    return tuple(int(k) for k in text.split(".")) if text else ()


def _connect(path: Path) -> sqlite3.Connection:
    import sqlite3

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise OutputError(f"{path}: cannot open the NCCI database ({exc})") from None
    return conn


def import_files(db: Path, files: Iterable[Path]) -> list[Imported]:
    """Import downloaded PTP and MUE files into ``db`` in one transaction: every file, or none (a malformed row
    raises InputError naming the file and line, and the database is left as it was)."""
    import sqlite3

    paths = list(files)
    with closing(_connect(db)) as conn:
        try:
            conn.executescript(_SCHEMA)
            _check_schema(conn, db)
            conn.execute("BEGIN IMMEDIATE")
            out = [_import_one(conn, p) for p in paths]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk, a locked or corrupt file
            _rollback(conn)
            raise OutputError(f"{db}: cannot write the NCCI database ({exc})") from None
        except BaseException:
            _rollback(conn)
            raise
    return out


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _check_schema(conn: sqlite3.Connection, db: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
    elif row[0] != SCHEMA_VERSION:
        raise DataError(str(db), "", f"NCCI database schema {row[0]}, this lettergen reads {SCHEMA_VERSION}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None


def _import_one(conn: sqlite3.Connection, path: Path) -> Imported:
    raw = _read(path)
    sha = hashlib.sha256(raw).hexdigest()
    existing = conn.execute("SELECT * FROM files WHERE sha256 = ?", (sha,)).fetchone()
    if existing is not None:
        return Imported(_record(existing), new=False)
    parsed = parse(path.name, raw)
    s = parsed.stated
    cur = conn.execute(
        "INSERT INTO files (kind, name, sha256, setting, version, version_key, effective, stated_in, header_lines,"
        " rows, imported) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        (
            parsed.kind,
            path.name,
            sha,
            s.setting,
            s.version,
            _key_text(s.version_key),
            s.effective.isoformat() if s.effective else None,
            s.stated_in,
            parsed.header_lines,
            datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    file_id = cur.lastrowid
    if parsed.kind == "ptp":
        cur = conn.executemany(
            "INSERT INTO ptp VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    file_id,
                    e.line,
                    e.column1,
                    e.column2,
                    int(e.prior_1996),
                    e.effective.isoformat(),
                    e.deletion.isoformat() if e.deletion else None,
                    e.modifier,
                    e.rationale,
                )
                for e in parsed.edits
                if isinstance(e, PtpEdit)
            ),
        )
    else:
        cur = conn.executemany(
            "INSERT INTO mue VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (file_id, e.line, e.code, e.value, e.mai, e.mai_text, e.rationale)
                for e in parsed.edits
                if isinstance(e, MueEdit)
            ),
        )
    table = "ptp" if parsed.kind == "ptp" else "mue"
    (count,) = conn.execute(f"SELECT count(*) FROM {table} WHERE file_id = ?", (file_id,)).fetchone()
    if count == 0:
        raise InputError(f"{path.name}: holds no edit")
    conn.execute("UPDATE files SET rows = ? WHERE id = ?", (count, file_id))
    row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
    return Imported(_record(row), new=True)


def _record(row: Sequence[object]) -> FileRecord:
    (fid, kind, name, sha, setting, version, key, effective, stated_in, header_lines, rows, imported) = row
    return FileRecord(
        id=int(str(fid)),
        kind="ptp" if kind == "ptp" else "mue",
        name=str(name),
        sha256=str(sha),
        setting=None if setting is None else str(setting),
        version=None if version is None else str(version),
        version_key=_key_of(str(key)),
        effective=date.fromisoformat(str(effective)) if effective else None,
        stated_in=None if stated_in is None else str(stated_in),
        header_lines=int(str(header_lines)),
        rows=int(str(rows)),
        imported=str(imported),
    )


# -- reading it back ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PtpHit:
    file: FileRecord
    edit: PtpEdit


@dataclass(frozen=True)
class MueHit:
    file: FileRecord
    edit: MueEdit


class NcciDb:
    """An imported NCCI database, read-only. :func:`open_db` gives None where none has been imported."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        import sqlite3

        self.path = path
        self._conn = conn
        try:
            self._files = [_record(r) for r in conn.execute("SELECT * FROM files ORDER BY id")]
        except sqlite3.Error as exc:
            conn.close()
            raise DataError(str(path), "", f"is not a lettergen NCCI database ({exc})") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> NcciDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def files(self) -> list[FileRecord]:
        return list(self._files)

    def ptp_files(self) -> list[FileRecord]:
        """For each setting, the files of the newest version imported (a quarterly PTP file is complete: it keeps
        deleted edits with their deletion dates, so the newest answers for any date)."""
        out: list[FileRecord] = []
        ptp = [f for f in self._files if f.kind == "ptp"]
        for setting in dict.fromkeys(f.setting for f in ptp):
            mine = [f for f in ptp if f.setting == setting]
            newest = max(f.version_key for f in mine)
            out += [f for f in mine if f.version_key == newest]
        return out

    def mue_files(self, on: date) -> list[FileRecord]:
        """For each setting, the MUE table in effect on ``on``: the latest effective on or before it (a table
        that states no effective date counts as in effect), the one imported last among equals."""
        out: list[FileRecord] = []
        mue = [f for f in self._files if f.kind == "mue"]
        for setting in dict.fromkeys(f.setting for f in mue):
            mine = [f for f in mue if f.setting == setting and (f.effective is None or f.effective <= on)]
            if mine:
                out.append(max(mine, key=lambda f: (f.effective or date.min, f.version_key, f.id)))
        return out

    def ptp_edits(self, codes: Sequence[str], on: date) -> list[PtpHit]:
        """The PTP edits in force on ``on`` (effective <= on < deletion) between two of ``codes``."""
        files = {f.id: f for f in self.ptp_files()}
        if not files or len(codes) < 2:
            return []
        marks = ",".join("?" * len(codes))
        fmarks = ",".join("?" * len(files))
        rows = self._conn.execute(
            f"SELECT file_id, line, column1, column2, prior_1996, effective, deletion, modifier, rationale FROM ptp"
            f" WHERE column1 IN ({marks}) AND column2 IN ({marks}) AND column1 != column2 AND file_id IN ({fmarks})"
            " AND effective <= ? AND (deletion IS NULL OR ? < deletion) ORDER BY file_id, line",
            (*codes, *codes, *files, on.isoformat(), on.isoformat()),
        ).fetchall()
        return [
            PtpHit(
                files[fid],
                PtpEdit(line, c1, c2, bool(p), date.fromisoformat(eff), date.fromisoformat(d) if d else None, m, r),
            )
            for fid, line, c1, c2, p, eff, d, m, r in rows
        ]

    def mue_edits(self, codes: Sequence[str], on: date) -> list[MueHit]:
        files = {f.id: f for f in self.mue_files(on)}
        if not files or not codes:
            return []
        marks = ",".join("?" * len(codes))
        fmarks = ",".join("?" * len(files))
        rows = self._conn.execute(
            f"SELECT file_id, line, code, value, mai, mai_text, rationale FROM mue WHERE code IN ({marks})"
            f" AND file_id IN ({fmarks}) ORDER BY file_id, line",
            (*codes, *files),
        ).fetchall()
        return [MueHit(files[fid], MueEdit(line, c, v, mai, t, r)) for fid, line, c, v, mai, t, r in rows]


def open_db(path: Path | None = None) -> NcciDb | None:
    """The NCCI database at ``path`` (default: :func:`default_db_path`), or None when none has been imported."""
    path = path or default_db_path()
    if not path.is_file():
        return None
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.Error as exc:
        raise DataError(str(path), "", f"is not a lettergen NCCI database ({exc})") from None
    db = NcciDb(path, conn)
    if not db.files():
        db.close()
        return None
    return db
