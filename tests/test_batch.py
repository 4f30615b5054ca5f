"""lettergen batch: pool, report, resume, faults (deleted case, interruption, unwritable or full output)."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api
from lettergen.errors import OutputError
from lettergen.files import CAN_SYNC_ALL
from lettergen.interfaces import batch
from lettergen.interfaces.batch import BatchOptions, CaseResult, run_batch

DAY = date(2026, 11, 21)
GOOD = ["chordoma-gluteal-mass.yaml", "biopsy-sacral-lesion.yaml", "proton-skull-base-chordoma.yaml"]


def _cases(tmp_path: Path, bad: bool = True) -> list[Path]:
    src = tmp_path / "cases"
    src.mkdir()
    out = []
    for name in GOOD:
        shutil.copy(EXAMPLES / name, src / name)
        out.append(src / name)
    if bad:
        (src / "broken.yaml").write_text("case_id: [unclosed\n")
        out.insert(1, src / "broken.yaml")
    return out


def _report(out: Path) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    rows = list(csv.DictReader(io.StringIO((out / batch.REPORT_CSV).read_text())))
    return rows, json.loads((out / batch.REPORT_JSON).read_text())


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith(".")] if out.exists() else []


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_case_does_not_stop_the_others(tmp_path: Path, jobs: int) -> None:
    files = _cases(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        "batch", *map(str, files), "-o", str(out), "--jobs", str(jobs), "--date", "2026-11-21"
    )
    assert code == 2, stderr
    assert "4 cases: 3 ok, 0 skipped (up to date), 1 failed" in stdout
    assert "broken.yaml" in stderr and "Traceback" not in stderr
    rows, js = _report(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"]  # input order, streamed
    assert rows[0]["case_id"] == "chordoma-gluteal-001"
    assert "20206=met" in rows[0]["verdicts"] and "38505=insufficient" in rows[0]["verdicts"]
    assert "not valid YAML" in rows[1]["error"]
    assert js[0]["verdicts"] == {"20206": "met", "38505": "insufficient"}
    assert js[1]["status"] == "failed" and js[1]["case_id"] is None
    assert (out / "chordoma-gluteal-001.lmn.md").exists() and (out / "chordoma-gluteal-001.lmn.ledger.json").exists()
    assert not _leftovers(out)


@pytest.mark.parametrize(
    ("case", "verdicts"),
    [
        ("broken", {}),  # not parsed: nothing decided
    ],
)
def test_a_failed_case_shows_the_verdicts_it_was_given(tmp_path: Path, case: str, verdicts: dict[str, str]) -> None:
    if case == "broken":
        file = tmp_path / "broken.yaml"
        file.write_text("case_id: [unclosed\n")
    else:
        file = EXAMPLES / case
    out = tmp_path / "out"
    code, _, stderr = run_cli("batch", str(file), "-o", str(out), "--date", "2026-11-21")
    assert code == 2, stderr
    rows, js = _report(out)
    assert js[0]["status"] == "failed" and js[0]["verdicts"] == verdicts
    assert rows[0]["verdicts"] == ";".join(f"{c}={v}" for c, v in verdicts.items())


def test_all_ok_exit_zero_and_jobs_agree(tmp_path: Path) -> None:
    files = _cases(tmp_path, bad=False)
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        code, _, stderr = run_cli("batch", *map(str, files), "-o", str(out), "-j", str(jobs), "--date", "2026-11-21")
        assert code == 0, stderr
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir() if "report" not in p.name)
    assert names == sorted(p.name for p in outs[1].iterdir() if "report" not in p.name)
    for n in names:  # the pool writes the same bytes as in-process
        assert (outs[0] / n).read_bytes() == (outs[1] / n).read_bytes()


def test_resume_skips_done_cases_and_redoes_changed_ones(tmp_path: Path) -> None:
    files = _cases(tmp_path, bad=False)
    out = tmp_path / "out"
    opts = BatchOptions(letter_date=None)
    first = run_batch(files, out, options=opts)
    assert first.status["ok"] == 3
    again = run_batch(files, out, options=opts)
    assert again.status["skipped"] == 3 and again.exit_code() == 0
    rows, _ = _report(out)
    assert {r["status"] for r in rows} == {"skipped"} and "20206=met" in rows[0]["verdicts"]
    # a changed case, a tampered letter and another format are drafted again
    files[0].write_text(files[0].read_text().replace("Jane Q. Sample", "Jane R. Sample"))
    (out / "biopsy-sacral-lesion-001.lmn.md").write_text("edited by hand\n")
    third = run_batch(files, out, options=opts)
    assert (third.status["ok"], third.status["skipped"]) == (2, 1)
    assert run_batch(files, out, options=BatchOptions(fmt="txt")).status["ok"] == 3


def test_case_deleted_mid_batch_is_reported_and_others_continue(tmp_path: Path) -> None:
    files = _cases(tmp_path, bad=False)
    out = tmp_path / "out"

    def delete_last(r: CaseResult) -> None:
        if files[-1].exists():
            files[-1].unlink()

    summary = run_batch(files, out, on_result=delete_last)
    rows, _ = _report(out)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "file not found" in rows[2]["error"] and summary.exit_code() == 2


def test_interrupted_batch_leaves_nothing_half_written_and_resumes(tmp_path: Path) -> None:
    files = _cases(tmp_path, bad=False)
    out = tmp_path / "out"
    seen: list[CaseResult] = []

    def interrupt(r: CaseResult) -> None:
        seen.append(r)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(files, out, on_result=interrupt)
    assert not (out / batch.REPORT_CSV).exists() and not _leftovers(out)
    resumed = run_batch(files, out)
    assert (resumed.status["skipped"], resumed.status["ok"]) == (2, 1)


def test_unwritable_output_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for args in (["batch", str(CHORDOMA), "-o", str(blocker / "out")], ["draft", str(CHORDOMA), "-o", str(blocker)]):
        code, _, stderr = run_cli(*args)
        assert code == 3, stderr
        assert len(stderr.strip().splitlines()) == 1 and "cannot write output" in stderr


def test_full_disk_exits_3_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lettergen.files as files

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_all", full)
    out = tmp_path / "out"
    code, _, stderr = run_cli("draft", str(CHORDOMA), "-o", str(out))
    assert code == 3 and "No space left" in stderr
    code, _, stderr = run_cli("batch", str(CHORDOMA), str(CHORDOMA), "-o", str(out))
    assert code == 3 and "No space left" in stderr
    assert list(out.iterdir()) == []


def test_report_write_failure_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any) -> None:
        raise OutputError(f"{tmp_path}: cannot write output (No space left on device)")

    monkeypatch.setattr(batch.Report, "commit", boom)
    code, _, stderr = run_cli("batch", str(CHORDOMA), "-o", str(tmp_path / "out"))
    assert code == 3 and "cannot write output" in stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--jobs", "0"], "--jobs"),
        (["--format", "odt"], "--format"),
        (["--type", "poem"], "--type"),
        (["--date", "tomorrow"], "--date"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], fragment: str) -> None:
    code, _, stderr = run_cli("batch", str(CHORDOMA), "-o", str(tmp_path / "out"), *args)
    assert code == 2 and fragment in stderr and not (tmp_path / "out").exists()


def test_internal_error_in_one_case_is_contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lettergen.api as api

    def bug(*a: Any, **k: Any) -> Any:
        raise ValueError("Jane Q. Sample 1965-03-14")

    monkeypatch.setattr(api, "check", bug)
    code, stdout, stderr = run_cli("batch", str(CHORDOMA), "-o", str(tmp_path / "out"))
    assert code == 1
    assert "internal error (ValueError)" in stderr
    report = (tmp_path / "out" / batch.REPORT_JSON).read_text()
    for text in (stdout, stderr, report):
        assert "Jane" not in text and "1965-03-14" not in text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "drawn"), [(io.StringIO(), False), (_Tty(), True)])
def test_progress_bar_only_on_a_terminal(stream: io.StringIO, drawn: bool) -> None:
    from lettergen.interfaces.batch_view import progress

    pytest.importorskip("rich")
    with progress(2, stream) as tick:
        tick(CaseResult("a.yaml", "a", "ok"))
        tick(CaseResult("b.yaml", None, "failed", error="x", kind="input"))
    assert bool(stream.getvalue()) is drawn


def _count_syncs(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {"fsync": [], "sync": [], "report": []}
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls["fsync"].append(str(fd)), real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: calls["sync"].append(str(len(calls["report"]))))

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name in (batch.REPORT_CSV, batch.REPORT_JSON):
            calls["report"].append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.skipif(not CAN_SYNC_ALL, reason="no os.sync here: a batch fsyncs each file instead")
def test_batch_syncs_once_before_the_report_and_draft_fsyncs_each_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_syncs(monkeypatch)
    summary = run_batch(_cases(tmp_path, bad=False), tmp_path / "out", options=BatchOptions(letter_date=DAY))
    assert summary.status["ok"] == 3
    # no fsync per letter; one sync, made while no report had been renamed into place yet
    assert calls["fsync"] == [] and calls["sync"] == ["0"] and len(calls["report"]) == 2

    calls["fsync"].clear()
    api.draft(api.load_case(CHORDOMA), letter_date=DAY).write(tmp_path / "one")
    assert len(calls["fsync"]) == 3  # a single draft makes its letter, ledger and staff note durable itself


def _frozen_in_worker(file: str) -> CaseResult:
    import gc

    return CaseResult(file, None, "ok", {"frozen": str(gc.get_freeze_count())})


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_workers_inherit_a_frozen_heap_and_the_parent_gets_its_own_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    monkeypatch.setattr(batch, "run_case", _frozen_in_worker)  # the forked workers see the same module
    before = gc.get_freeze_count()
    summary = run_batch([str(CHORDOMA)] * 4, tmp_path / "out", jobs=2)
    assert summary.status["ok"] == 4
    frozen = [int(n) for (key, n), times in summary.verdicts.items() if key == "frozen" for _ in range(times)]
    assert len(frozen) == 4 and all(n > 10_000 for n in frozen)  # the knowledge base, templates, modules
    # Thawed again, unless something froze this process before (lettergen's polish does): that stays.
    assert gc.get_freeze_count() == before if before == 0 else gc.get_freeze_count() >= before


def test_a_case_with_nothing_to_request_is_skipped_with_its_reason(tmp_path: Path) -> None:
    # A not-met code is no failure of the batch: the record does not support a payer letter, and the report says so.
    out = tmp_path / "out"
    code, _, stderr = run_cli("batch", str(EXAMPLES / "appeal-not-met-cryoablation.yaml"), "-o", str(out))
    assert code == 0, stderr
    _rows, js = _report(out)
    assert js[0]["status"] == "skipped" and js[0]["verdicts"] == {"20983": "not_met"}
    assert "no denied code meets its criteria" in js[0]["error"]
    assert not list(out.glob("*.appeal.md"))


FHIR_CHORDOMA = EXAMPLES / "chordoma-gluteal-mass.fhir.json"


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("yaml_first", [True, False], ids=["yaml-first", "fhir-first"])
def test_two_cases_with_the_same_outputs_the_second_fails_naming_the_first(
    tmp_path: Path, jobs: int, yaml_first: bool
) -> None:
    # The chordoma case and its FHIR form share case_id and letter type: both were reported ok, and the one
    # written last silently replaced the other's letter and ledger.
    pair = [CHORDOMA, FHIR_CHORDOMA] if yaml_first else [FHIR_CHORDOMA, CHORDOMA]
    files = [pair[0], EXAMPLES / "biopsy-sacral-lesion.yaml", pair[1]]
    out = tmp_path / "out"
    for rerun in (False, True):
        code, _, stderr = run_cli("batch", *map(str, files), "-o", str(out), "-j", str(jobs), "--date", "2026-11-21")
        assert code == 2, stderr
        rows, _ = _report(out)
        statuses = [r["status"] for r in rows]
        if rerun and jobs > 1:
            # With two processes the later duplicate may reach the name first and write over it before the
            # earlier case takes it back: the earlier case then drafts again ("ok") where it would be "skipped".
            # The files are the earlier case's either way (checked below).
            assert statuses[0] in ("skipped", "ok") and statuses[1:] == ["skipped", "failed"], statuses
        else:
            assert statuses == (["skipped"] * 2 if rerun else ["ok"] * 2) + ["failed"]
        assert rows[2]["error"].startswith(f"{pair[1]}: case_id: 'chordoma-gluteal-001' is also the case_id of ")
        assert f"of {pair[0]}, earlier in this batch" in rows[2]["error"]
        assert rows[2]["verdicts"] == "20206=met;38505=insufficient"
        ledger = json.loads((out / "chordoma-gluteal-001.lmn.ledger.json").read_text())
        assert ledger["case_sha256"] == api.load_case(pair[0]).sha256  # the first case's letter, not the second's
        assert not _leftovers(out)


def test_a_later_case_that_reached_the_name_first_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With several processes the second case can reach the output name before the first: the first then
    # replaces its files, and the report still fails the second, as a run one case at a time does.
    def backwards(files: list[str], jobs: int, options: BatchOptions, out_dir: Path, claims: str) -> Any:
        batch._init_worker(options, str(out_dir), claims)
        done = [batch.run_case(f) for f in reversed(files)]
        yield from reversed(done)

    monkeypatch.setattr(batch, "_results", backwards)
    out = tmp_path / "out"
    summary = run_batch([CHORDOMA, FHIR_CHORDOMA], out, options=BatchOptions(letter_date=DAY))
    rows, _ = _report(out)
    assert [r["status"] for r in rows] == ["ok", "failed"] and summary.exit_code() == 2
    assert f"is also the case_id of {CHORDOMA}, earlier in this batch" in rows[1]["error"]
    ledger = json.loads((out / "chordoma-gluteal-001.lmn.ledger.json").read_text())
    assert ledger["case_sha256"] == api.load_case(CHORDOMA).sha256
    assert not _leftovers(out)


def test_two_cases_with_one_case_id_are_not_both_kept(tmp_path: Path) -> None:
    # Two cases with one case_id (one copied from the other, as skeletons once all were new-case-001), patients
    # apart: the first is drafted, the second fails naming it.
    files = []
    for name, patient in (("a.yaml", "Jane Q. Sample"), ("b.yaml", "John R. Sample")):
        text = CHORDOMA.read_text().replace("chordoma-gluteal-001", "new-case-001").replace("Jane Q. Sample", patient)
        (tmp_path / name).write_text(text)
        files.append(str(tmp_path / name))
    out = tmp_path / "out"
    code, _, stderr = run_cli("batch", *files, "-o", str(out), "--date", "2026-11-21")
    assert code == 2, stderr
    rows, _ = _report(out)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert f"'new-case-001' is also the case_id of {files[0]}" in rows[1]["error"]
    assert "Jane Q. Sample" in (out / "new-case-001.lmn.md").read_text()


KILLED_BATCH = """
import os, signal, sys
from lettergen.interfaces.batch import run_batch
seen = []
def kill(r):
    seen.append(r)
    if len(seen) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
run_batch(sys.argv[2:], __import__("pathlib").Path(sys.argv[1]), on_result=kill)
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs SIGKILL")
def test_a_rerun_removes_what_a_killed_batch_left(tmp_path: Path) -> None:
    import subprocess
    import sys

    files = _cases(tmp_path, bad=False)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BATCH, str(out), *map(str, files)])
    assert proc.wait() == -9
    left = _leftovers(out)
    assert any(n.startswith(".batch-report.csv.") for n in left), left
    # a letter the killed batch was writing; a leftover of a version without the pid in the name; a live
    # process's file and a file that is not lettergen's, which must stay
    (out / f".proton-skull-base-chordoma-001.lmn.md.{proc.pid}.7.tmp").write_text("half a letter")
    (out / ".batch-report.json.k3x_9abc.tmp").write_text("[")
    keep = [f".batch-report.csv.{os.getpid()}.abcd1234.tmp", f".notes-of-someone.{proc.pid}.x.tmp"]
    for name in keep:
        (out / name).write_text("not ours to remove\n")
    code, stdout, stderr = run_cli("batch", *map(str, files), "-o", str(out))
    assert code == 0, stderr
    assert "1 ok, 2 skipped" in stdout  # the two finished before the kill are up to date
    assert sorted(_leftovers(out)) == sorted(keep)
