"""``lettergen batch``: many cases, a process pool, one report; a bad case never stops the others.

* Streams: cases go to the pool with ``imap`` (ordered, chunked) and each result is written to the report as
  it arrives; no letter is held after it is written.
* Resumable: a case whose ledger in DIR already matches its case hash, the current data-file hashes, the
  letter type, format and date (and whose letter still has the hash the ledger records) is skipped.
* Atomic: letters and ledgers are written whole or not at all; the reports (``batch-report.csv`` and
  ``batch-report.json``) are streamed to temporary files and renamed into place at the end. The temporary
  files of a batch that was killed (their names carry the pid of the process that made them, which is gone)
  are removed by the next batch into the same folder.
* One case per output: two cases whose letters would land on the same files (the same ``case_id`` and
  letter type: a YAML case and its FHIR form, two fresh ``lettergen init`` skeletons) are not both drafted.
  The first in input order is; the other fails, naming it. Each output name is claimed under a lock in a
  folder of the batch (:func:`_claimed`), so that this holds with any number of processes and threads.

Exit codes (see :func:`exit_code`): 0 every case ok or skipped; 1 a letter failed validation (or an internal
error hit one case); 2 some cases had bad input (the others are still written, and the report); 3 the output
directory cannot be written (:class:`~lettergen.errors.OutputError`).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lettergen.errors import (
    CaseError,
    EnvironmentProblem,
    InputError,
    LettergenError,
    NothingToDraft,
    OutputError,
    ValidationFailed,
)

if TYPE_CHECKING:
    from lettergen.interfaces.table import Row
    from lettergen.polish.pool import Emit

REPORT_CSV = "batch-report.csv"
REPORT_JSON = "batch-report.json"
CSV_FIELDS = ("file", "case_id", "status", "verdicts", "error")


@dataclass(frozen=True)
class BatchOptions:
    letter_type: str | None = None
    fmt: str = "md"
    letter_date: date | None = None
    redact_ledger: bool = False
    # With a polisher (lettergen.polish.polisher.make_polisher) the cases run on threads, ``concurrency`` at a time:
    # the work is mostly waiting on the model. ``jobs`` > 1 spreads them over that many processes.
    polisher: Any = None
    concurrency: int = 8
    # The practice profile (lettergen.case.profile.Profile), the same for every case; its hashes are part of the
    # data files a ledger must match to be skipped.
    profile: Any = None


@dataclass
class CaseResult:
    file: str
    case_id: str | None
    status: str  # ok | failed | skipped
    verdicts: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    kind: str | None = None  # input | validation | environment | internal (when failed)
    stem: str | None = None  # <case_id>.<letter type>: the name of its outputs, once the case is read

    def row(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "case_id": self.case_id,
            "status": self.status,
            "verdicts": self.verdicts,
            "error": self.error,
        }


@dataclass
class BatchSummary:
    out_dir: Path
    total: int = 0
    status: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # first few (file, error), for the screen
    reports: tuple[Path, Path] | None = None

    def add(self, r: CaseResult) -> None:
        self.total += 1
        self.status[r.status] += 1
        if r.kind:
            self.kinds[r.kind] += 1
        for code, verdict in r.verdicts.items():
            self.verdicts[(code, verdict)] += 1
        if r.status == "failed" and len(self.failures) < 20:
            self.failures.append((r.file, r.error or ""))

    def exit_code(self) -> int:
        if self.kinds["input"]:
            return 2
        if self.kinds["validation"] or self.kinds["internal"]:
            return 1
        return 0


# -- one case (runs in a worker process) ------------------------------------------------------------

_OPTIONS = BatchOptions()
_OUT = Path(".")
_CLAIMS: Path | None = None  # the batch's folder of output-name claims (see _claimed)


class _Item(str):
    """A case file name that knows its place in the batch's input: the first of two cases with the same
    outputs is the one earlier in the input, whichever process reaches them first."""

    position: int

    def __new__(cls, file: str, position: int) -> _Item:
        item = super().__new__(cls, file)
        item.position = position
        return item

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Item, (str(self), self.position))


class _RowItem(_Item):
    """A row of a ``--csv`` table (lettergen.interfaces.table.Row), named by its file and row number."""

    row: Any

    def __new__(cls, row: Any, position: int) -> _RowItem:
        item = str.__new__(cls, row.label)
        item.position = position
        item.row = row
        return item

    def __reduce__(self) -> tuple[Any, ...]:
        return (_RowItem, (self.row, self.position))


def _item(entry: Any, position: int) -> _Item:
    from lettergen.interfaces.table import Row

    return _RowItem(entry, position) if isinstance(entry, Row) else _Item(str(entry), position)


def _init_worker(options: BatchOptions, out_dir: str, claims: str | None = None) -> None:
    global _OPTIONS, _OUT, _CLAIMS
    _OPTIONS, _OUT = options, Path(out_dir)
    _CLAIMS = Path(claims) if claims else None
    warm(options.fmt)


def warm(fmt: str) -> None:
    """Load what every case needs once per process: the knowledge base, the ICD-10 index, and the templates
    of the one format this batch renders (compiling all three took a third of a second for nothing)."""
    from lettergen import api
    from lettergen.case import codes
    from lettergen.knowledge.store import load_kb
    from lettergen.letter import render

    kb = load_kb()
    codes._billable_index().warm()
    env = render._env(str(render.templates_dir()), api.render_format(fmt))
    for p in sorted(render.templates_dir().glob("*.j2")):
        with contextlib.suppress(Exception):
            env.get_template(p.name)
    api.data_files(kb)


def _verdicts(decision: Any) -> dict[str, str]:
    return {s.code: s.verdict for s in decision.services}


def _decided(case: Any) -> dict[str, str]:
    """The verdicts of a case that failed after it was decided (check remembers its decision), else none."""
    from lettergen import api

    if case is None:
        return {}
    try:
        return _verdicts(api.check(case))
    except LettergenError:  # it failed before its decision, and would again
        return {}


def _up_to_date(
    ledger_path: Path, letter_path: Path, sha: str, ltype: str, options: BatchOptions, case: Any = None
) -> Any:
    """The decision of an existing ledger that matches this case and the current data, else None."""
    from lettergen.provenance.ledger import sha256_text

    try:
        text = ledger_path.read_bytes()
        raw = json.loads(text)
        letter_sha = sha256_text(letter_path.read_bytes())
    except (OSError, ValueError):
        return None
    if options.redact_ledger and case is not None and not _redacted_with_this_key(text, case):
        return None
    if not isinstance(raw, dict):
        return None
    from lettergen.api import data_files
    from lettergen.knowledge.store import load_kb

    expect = {
        "case_sha256": sha,
        "letter_type": ltype,
        "format": options.fmt,
        "letter_sha256": letter_sha,
        "data_files": data_files(load_kb(), options.profile),
        "redacted": options.redact_ledger,
    }
    model = options.polisher.settings.model if options.polisher is not None else None
    if (raw.get("polish") or {}).get("model") != model:
        return None  # drafted with another model, or offline where a polish is asked now (or the reverse)
    if any(raw.get(k, False if k == "redacted" else None) != v for k, v in expect.items()):
        return None
    if options.letter_date is not None and raw.get("letter_date") != options.letter_date.isoformat():
        return None
    services = raw.get("decision", {}).get("services", [])
    return {str(s.get("code")): str(s.get("verdict")) for s in services if isinstance(s, dict)}


def _redacted_with_this_key(ledger: bytes, case: Any) -> bool:
    """Whether a redacted ledger's tokens are this key's (not another key's, nor the unkeyed hashes of earlier
    versions): the token of the birth date, which every ledger's header holds, is looked for."""
    from lettergen.provenance.redact import token

    return token(case.patient.birth_date.isoformat()).encode("utf-8") in ledger


def _same_outputs(file: str, case_id: str, ltype: str, other: str) -> CaseError:
    return CaseError(
        file,
        "case_id",
        f"'{case_id}' is also the case_id of {other}, earlier in this batch, whose {ltype} letter this one would "
        "replace: not drafted (give each case its own case_id)",
    )


@contextlib.contextmanager
def _claimed(stem: str, file: str) -> Iterator[str | None]:
    """Hold the output name ``stem`` for ``file`` while it is checked, drafted and written; yields the file that
    holds it instead (a case earlier in the input with the same outputs), or None.

    A claim is a file of the batch's claims folder named after the outputs, locked (``flock``) while its
    holder works and holding that holder's input position and name. A case finds the name held by a case
    earlier in the input: it writes nothing. By one later in the input (a faster process reached it first):
    it takes the name over and writes its own outputs over that one's, which :func:`run_batch` then reports
    as failed. Either way the files are the earlier case's, as when the cases run one after the other.
    """
    index = getattr(file, "position", None)
    if _CLAIMS is None or index is None:  # run_case called on its own, outside a batch
        yield None
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the position still decides, without a lock around the work
        fcntl = None  # type: ignore[assignment]
    fd = os.open(_CLAIMS / stem, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        held = os.read(fd, 65536).decode("utf-8", "replace")
        position, _, holder = held.partition("\n")
        if position.isdigit() and int(position) < index:
            yield holder
            return
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{index}\n{file}".encode())
        yield None
    finally:
        os.close(fd)  # and with it the lock


def run_case(file: str) -> CaseResult:
    """Check, draft and write one case; every failure becomes a result, never an exception."""
    from lettergen import api
    from lettergen.files import CAN_SYNC_ALL
    from lettergen.knowledge.store import load_kb
    from lettergen.yamlio import read_text

    options, out = _OPTIONS, _OUT
    item, file = file, str(file)
    case_id = case = stem = None
    try:
        kb = load_kb()
        row = getattr(item, "row", None)
        if row is not None:  # a row of a --csv table
            from lettergen.interfaces.table import load_row

            loaded = load_row(row, kb)
        else:
            text = read_text(Path(file), CaseError)
            loaded = api.load_case(file, kb=kb, text=text, profile=options.profile)
        case = loaded.case
        case_id = case.case_id
        ltype = options.letter_type or case.letter.type
        stem = f"{case_id}.{ltype}"
        with _claimed(stem, item) as holder:
            if holder is not None:
                raise _same_outputs(file, case_id, ltype, holder)
            letter_path = out / f"{stem}.{api.EXTENSIONS.get(options.fmt, options.fmt)}"
            ledger_path = out / f"{stem}.ledger.json"
            previous = _up_to_date(ledger_path, letter_path, loaded.sha256, ltype, options, case)
            if previous is not None:
                return CaseResult(file, case_id, "skipped", previous, stem=stem)
            result = api.draft(
                loaded,
                letter_type=options.letter_type,
                fmt=options.fmt,
                letter_date=options.letter_date,
                kb=kb,
                redact_ledger=options.redact_ledger,
                polish=options.polisher,
                profile=options.profile,
            )
            result.write(out, durable=not CAN_SYNC_ALL)  # run_batch syncs once before the report
        return CaseResult(file, case_id, "ok", _verdicts(result.decision), stem=stem)
    except ValidationFailed as exc:
        return CaseResult(file, case_id, "failed", _decided(case), str(exc), kind="validation", stem=stem)
    except NothingToDraft as exc:  # not a failure: the record does not support a payer letter yet
        return CaseResult(file, case_id, "skipped", _decided(case), str(exc), stem=stem)
    except (InputError, LettergenError) as exc:
        kind = "environment" if isinstance(exc, EnvironmentProblem) else "input"
        if not isinstance(exc, InputError | EnvironmentProblem) and exc.exit_code != 2:
            kind = "internal"
        # A case refused after its decision (an appeal of a code that is not met) still shows its verdicts.
        return CaseResult(file, case_id, "failed", _decided(case), str(exc), kind=kind, stem=stem)
    except Exception as exc:  # a bug must not stop the batch, nor print case data
        return CaseResult(
            file, case_id, "failed", error=f"internal error ({type(exc).__name__})", kind="internal", stem=stem
        )


# -- the report --------------------------------------------------------------------------------------


class _Staged:
    """A file written in pieces to a temporary name, renamed into place by :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # The pid in the name tells a later batch whether the file is a leftover (see _clean_leftovers).
            fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise OutputError(f"{path.parent}: cannot write output ({exc.strerror or exc})") from None
        self.fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> None:
        try:
            self.fh.write(text)
        except OSError as exc:
            raise OutputError(f"{self.path.parent}: cannot write output ({exc.strerror or exc})") from None

    def commit(self) -> None:
        try:
            self.fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(f"{self.path.parent}: cannot write output ({exc.strerror or exc})") from None

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class Report:
    """CSV and JSON reports streamed row by row."""

    def __init__(self, out_dir: Path) -> None:
        self.first = True
        self.csv = _Staged(out_dir / REPORT_CSV)
        try:
            self.json = _Staged(out_dir / REPORT_JSON)
        except OutputError:
            self.csv.discard()
            raise
        try:
            self.csv.write(_csv_line(CSV_FIELDS))
            self.json.write("[")
        except OutputError:
            self.discard()
            raise

    def add(self, r: CaseResult) -> None:
        row = r.row()
        verdicts = ";".join(f"{c}={v}" for c, v in r.verdicts.items())
        self.csv.write(_csv_line([row["file"], row["case_id"] or "", r.status, verdicts, r.error or ""]))
        self.json.write(("\n  " if self.first else ",\n  ") + json.dumps(row, ensure_ascii=False))
        self.first = False

    def commit(self) -> tuple[Path, Path]:
        self.json.write("\n]\n")
        self.csv.commit()
        self.json.commit()
        return self.csv.path, self.json.path

    def discard(self) -> None:
        self.csv.discard()
        self.json.discard()


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


# -- the batch ---------------------------------------------------------------------------------------


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".lettergen-probe.{os.getpid()}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write output ({exc.strerror or exc})") from None


# What a batch leaves in its folder only when it is killed: ".<name>.<pid>.<unique>.tmp", the report's and the
# letters' temporary files (lettergen.files names them so too), the probe, and the claims folder; and the
# report's temporary files of versions that did not put the pid in their names.
_LEFTOVER = re.compile(
    r"\.(?P<name>batch-report\.(?:csv|json)|lettergen-probe|batch-claims"
    r"|.+\.(?:md|txt|html|pdf|docx|fhir\.json|ledger\.json))\.(?P<pid>\d+)\.[^.]+\.tmp"
)
_OLD_REPORT_TMP = re.compile(r"\.batch-report\.(?:csv|json)\.[A-Za-z0-9_]{8}\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid we cannot ask about: leave its files alone
    return True


def _clean_leftovers(out_dir: Path) -> None:
    """Remove the temporary files and folders of batches (and drafts) into ``out_dir`` that were killed.

    A file is removed only when the process named in it is gone, so that a batch writing into the same
    folder at the same time keeps its files. A leftover that cannot be removed is left: it is no output.
    """
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        m = _LEFTOVER.fullmatch(name)
        if m is not None:
            if _alive(int(m.group("pid"))):
                continue
        elif not _OLD_REPORT_TMP.fullmatch(name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _results(
    files: Sequence[str], jobs: int, options: BatchOptions, out_dir: Path, claims: str | None = None
) -> Iterator[CaseResult]:
    if options.polisher is not None:
        _init_worker(options, str(out_dir), claims)
        if jobs <= 1 or len(files) <= 1:
            yield from _polish_files(files, options.concurrency)
            return
        from lettergen.polish.pool import run_sharded

        # Shards of each group of files go to the polisher's worker processes (lettergen.polish.pool) and
        # one stays here; a group is a few rounds of calls, so the report and progress bar keep moving.
        group = max(1, jobs * options.concurrency * 4)
        for start in range(0, len(files), group):
            yield from run_sharded(
                files[start : start + group],
                polisher=options.polisher,
                processes=jobs,
                concurrency=options.concurrency,
                options={"batch": options, "out_dir": str(out_dir), "claims": claims},
                run_here=_polish_files,
                run_there=_polish_files_there,
            )
        return
    if jobs <= 1 or len(files) <= 1:
        _init_worker(options, str(out_dir), claims)
        yield from map(run_case, files)
        return
    methods = multiprocessing.get_all_start_methods()
    fork = "fork" in methods
    ctx = multiprocessing.get_context("fork" if fork else None)
    # A heap frozen already (a process that polished froze its own) stays so; otherwise it is thawed after.
    thaw = fork and gc.get_freeze_count() == 0
    if fork:
        warm(options.fmt)  # children inherit the loaded knowledge base
        # ...frozen: their collector then never walks those objects (nor copies the pages it would touch).
        # Collected first, so that nothing frozen is garbage: this process loses nothing while it waits.
        gc.collect()
        gc.freeze()
    chunksize = max(1, min(64, len(files) // (jobs * 8)))
    try:
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(options, str(out_dir), claims)) as pool:
            yield from pool.imap(run_case, files, chunksize=chunksize)
    finally:
        if thaw:
            gc.unfreeze()


def _polish_files(files: Sequence[str], threads: int, emit: Emit | None = None) -> list[CaseResult]:
    from lettergen.polish.pool import run_threads

    return run_threads(run_case, files, threads, emit)


def _polish_files_there(polisher: Any, files: Sequence[str], threads: int, options: dict[str, Any], emit: Emit) -> None:
    """In a polish worker process: this shard's cases, written to the batch's output directory."""
    # Its polisher arrives as this worker's own (cheap again).
    _init_worker(options["batch"], options["out_dir"], options.get("claims"))
    _polish_files(files, threads, emit)


def run_batch(
    files: Sequence[str | Path | Row],
    out_dir: Path,
    *,
    jobs: int = 1,
    options: BatchOptions | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> BatchSummary:
    """Draft every case into ``out_dir``; returns the summary (the report files are in ``out_dir``). A case is
    a file name, or a row of a table (lettergen.interfaces.table.read_table)."""
    from lettergen.api import check_format
    from lettergen.errors import UsageError
    from lettergen.files import CAN_SYNC_ALL, sync_all
    from lettergen.knowledge.store import load_kb
    from lettergen.letter.render import LETTER_TYPES

    options = options or BatchOptions()
    if jobs < 1:
        raise UsageError(f"--jobs: must be at least 1, not {jobs}")
    check_format(options.fmt)
    if options.letter_type is not None and options.letter_type not in LETTER_TYPES:
        raise UsageError(f"--type: unknown letter type '{options.letter_type}' (choose from {', '.join(LETTER_TYPES)})")
    if not files:
        raise UsageError("batch: no case files given (name them, or a table with --csv)")
    load_kb()  # a corrupt knowledge base stops the batch before any case (DataError, exit 2)
    if options.redact_ledger:
        from lettergen.provenance.redact import redaction_key

        redaction_key()  # made (or refused, exit 3) once, before any case and any worker
    _check_out_dir(out_dir)
    _clean_leftovers(out_dir)
    summary = BatchSummary(out_dir=out_dir)
    report = Report(out_dir)
    claims: str | None = None
    first: dict[str, str] = {}  # output name -> the case file that has it
    try:
        claims = tempfile.mkdtemp(prefix=f".batch-claims.{os.getpid()}.", suffix=".tmp", dir=out_dir)
        items = [_item(f, i) for i, f in enumerate(files)]
        for r in _results(items, jobs, options, out_dir, claims):
            r = _first_of_its_outputs(r, first)
            summary.add(r)
            report.add(r)
            if on_result is not None:
                on_result(r)
            if r.kind == "environment":
                raise OutputError(r.error or f"{out_dir}: cannot write output")
        if CAN_SYNC_ALL:
            sync_all()  # the letters are on disk before the report says they were written
        summary.reports = report.commit()
    except OSError as exc:  # the claims folder could not be made
        report.discard()
        raise OutputError(f"{out_dir}: cannot write output ({exc.strerror or exc})") from None
    except BaseException:
        report.discard()
        raise
    finally:
        if claims is not None:
            shutil.rmtree(claims, ignore_errors=True)
    return summary


def _first_of_its_outputs(r: CaseResult, first: dict[str, str]) -> CaseResult:
    """``r``, or a failure when a case earlier in the input has the same outputs (see :func:`_claimed`):
    results arrive in input order, and a case that reached the name before an earlier one did (another
    process was slower) wrote files that the earlier one has replaced since."""
    if r.stem is None or r.case_id is None:
        return r
    other = first.setdefault(r.stem, r.file)
    if other == r.file:
        return r
    error = str(_same_outputs(r.file, r.case_id, r.stem[len(r.case_id) + 1 :], other))
    if r.error == error:  # its worker found the name held already
        return r
    return CaseResult(r.file, r.case_id, "failed", r.verdicts, error, kind="input", stem=r.stem)


def summary_rows(summary: BatchSummary) -> list[tuple[str, str, int]]:
    """(code, verdict, count) rows for the summary table, sorted."""
    return [(c, v, n) for (c, v), n in sorted(summary.verdicts.items())]
