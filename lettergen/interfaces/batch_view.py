"""What ``lettergen batch`` shows: a progress bar on a terminal (rich, imported only then) and a summary table."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer

from lettergen.interfaces.batch import BatchSummary, CaseResult, summary_rows


@contextlib.contextmanager
def progress(total: int, stream: Any = None) -> Iterator[Callable[[CaseResult], None]]:
    """Yield a per-result callback: a rich progress bar when ``stream`` (stderr) is a terminal, else nothing."""
    stream = stream or sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield lambda _r: None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:  # the bar is a nicety: without rich the batch runs quietly
        yield lambda _r: None
        return
    bar = Progress(
        TextColumn("drafting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=True,
    )
    task = bar.add_task("batch", total=total, failed=0)
    failed = 0

    def tick(r: CaseResult) -> None:
        nonlocal failed
        failed += r.status == "failed"
        bar.update(task, advance=1, failed=failed)

    with bar:
        yield tick


def print_summary(summary: BatchSummary) -> None:
    from lettergen.interfaces._stdout import echo  # a failed write is exit 3, as for every command

    s = summary.status
    echo(f"{summary.total} cases: {s['ok']} ok, {s['skipped']} skipped (up to date), {s['failed']} failed")
    rows = summary_rows(summary)
    if rows:
        echo(f"{'code':<8} {'verdict':<13} {'cases':>6}")
        for code, verdict, n in rows:
            echo(f"{code:<8} {verdict:<13} {n:>6}")
    for file, error in summary.failures:
        for line in error.splitlines() or [""]:  # a case with several problems: one line each
            typer.echo(f"failed: {line}" if line.startswith(file) else f"failed: {file}: {line}", err=True)
    if s["failed"] > len(summary.failures):
        typer.echo(f"... and {s['failed'] - len(summary.failures)} more failures (see the report)", err=True)
    if summary.reports:
        echo(f"report: {summary.reports[0]} and {summary.reports[1]}")


def summary_json(summary: BatchSummary) -> dict[str, Any]:
    """What ``batch --json`` prints (the keys are documented in the README). Failures are the first 20, as on
    the screen; the report files hold every case."""
    s = summary.status
    return {
        "total": summary.total,
        "ok": s["ok"],
        "skipped": s["skipped"],
        "failed": s["failed"],
        "verdicts": [{"code": c, "verdict": v, "cases": n} for c, v, n in summary_rows(summary)],
        "failures": [{"file": f, "error": e} for f, e in summary.failures],
        "more_failures": max(0, s["failed"] - len(summary.failures)),
        "reports": [str(p) for p in summary.reports] if summary.reports else [],
        "exit_code": summary.exit_code(),
    }
