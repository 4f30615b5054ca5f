"""Polishing over worker processes: the same letters as in one process, errors and all, in order."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import CHORDOMA, EXAMPLES

from lettergen import api
from lettergen.errors import CaseError, DataError, LettergenError, MissingExtra, OutputError, ValidationFailed
from lettergen.interfaces.batch import BatchOptions, run_batch
from lettergen.polish.polisher import Polisher, make_polisher, shared_polisher
from lettergen.polish.pool import polish_many, split, workers_for
from tests.fake_llm import FakeLLM

DAY = date(2026, 11, 21)
GOOD = ["chordoma-gluteal-mass.yaml", "biopsy-sacral-lesion.yaml", "proton-skull-base-chordoma.yaml"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    srv = FakeLLM().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def polisher(server: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polisher]:
    # One polisher for the module, so that its worker process (spawned, importing litellm) starts once.
    pol = make_polisher("openai/faithful", api_base=server.url, cache_dir=tmp_path_factory.mktemp("cache"),
                        use_cache=False, timeout=5.0, attempts=2, backoff=0.01)  # fmt: skip
    yield pol
    pol.close_workers()


@pytest.mark.parametrize(
    ("total", "parts", "shares"),
    [(16, 2, [8, 8]), (5, 2, [3, 2]), (7, 3, [3, 2, 2]), (1, 3, [1, 1, 1]), (4, 4, [1, 1, 1, 1])],
)
def test_split_shares_concurrency(total: int, parts: int, shares: list[int]) -> None:
    assert split(total, parts) == shares


@pytest.mark.parametrize(
    "err",
    [
        CaseError("case.yaml", "patient.name", "is required"),
        DataError("criteria/x.yaml", "rules", "broken"),
        MissingExtra("llm", "--polish"),
        OutputError("out: cannot write output"),
        ValidationFailed("letter failed", ["issue"]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_cross_a_process_boundary_as_themselves(err: LettergenError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__
    assert back.exit_code == err.exit_code


def test_a_polisher_crosses_as_its_settings(polisher: Polisher) -> None:
    back = pickle.loads(pickle.dumps(polisher))
    assert back.settings == polisher.settings
    assert back is shared_polisher(polisher.settings)  # built once per process, then reused


def _summary(result: Any) -> Any:
    if isinstance(result, LettergenError):
        return (type(result).__name__, str(result))
    return (result.case.case_id, result.text, result.ledger.polish.status, sorted(result.ledger.polish.accepted))


def test_two_processes_give_the_same_letters_in_order(polisher: Polisher) -> None:
    items: list[Any] = [api.load_case(EXAMPLES / name) for name in GOOD * 2]
    case = api.load_case(CHORDOMA).case
    appeal = case.model_copy(update={"letter": case.letter.model_copy(update={"type": "appeal"})})
    items.insert(3, appeal)  # an appeal with no denial on file: an input error, raised in the worker
    one = polish_many(items, model="", polisher=polisher, concurrency=4, letter_date=DAY, strict=False)
    two = polish_many(items, model="", polisher=polisher, concurrency=4, letter_date=DAY, strict=False, processes=2)
    assert [_summary(r) for r in two] == [_summary(r) for r in one]
    assert isinstance(two[3], LettergenError)  # the odd-numbered shard ran in the worker
    assert all(
        not isinstance(r, LettergenError) and r.ledger.polish.status == "ok" for i, r in enumerate(two) if i != 3
    )


def test_workers_of_a_polisher_made_for_one_call_stop_with_it(server: FakeLLM, tmp_path: Path) -> None:
    import multiprocessing

    before = set(multiprocessing.active_children())
    items = [api.load_case(EXAMPLES / name) for name in GOOD[:2]]
    out = polish_many(items, model="openai/faithful", api_base=server.url, concurrency=2, letter_date=DAY,
                      processes=2, cache_dir=tmp_path, timeout=5.0)  # fmt: skip
    assert [r.ledger.polish.status for r in out if not isinstance(r, LettergenError)] == ["ok", "ok"]
    assert set(multiprocessing.active_children()) <= before  # no worker left running


def test_batch_polish_with_jobs_writes_every_letter(polisher: Polisher, tmp_path: Path) -> None:
    files = [EXAMPLES / name for name in GOOD]
    out = tmp_path / "out"
    summary = run_batch(files, out, jobs=2, options=BatchOptions(letter_date=DAY, polisher=polisher, concurrency=2))
    assert summary.status["ok"] == 3
    for name in GOOD:
        case_id = api.load_case(EXAMPLES / name).case.case_id
        ledger = json.loads(next(out.glob(f"{case_id}.*.ledger.json")).read_text())
        assert ledger["polish"]["status"] == "ok" and ledger["polish"]["model"] == "openai/faithful"
    resumed = run_batch(files, out, jobs=2, options=BatchOptions(letter_date=DAY, polisher=polisher, concurrency=2))
    assert resumed.status["skipped"] == 3


def _die(polisher: Any, items: Any, threads: int, options: Any, emit: Any) -> None:
    import os

    os._exit(1)  # a worker killed mid-shard (out of memory, a signal)


def _die_after_two(polisher: Any, items: Any, threads: int, options: Any, emit: Any) -> None:
    import os

    emit(0, items[0] * 10)
    emit(2, items[2] * 10)
    os._exit(1)  # killed with two of its results already sent


def _defect(polisher: Any, items: Any, threads: int, options: Any, emit: Any) -> None:
    emit(0, items[0] * 10)
    raise ZeroDivisionError("a defect in the worker")


def _fail(polisher: Polisher, run_there: Any) -> tuple[list[Any], list[list[int]]]:
    from lettergen.polish.pool import run_sharded

    here: list[list[int]] = []

    def run_here(shard: Any, threads: int) -> list[Any]:
        here.append(list(shard))
        return [i * 10 for i in shard]

    items = list(range(6))
    out = run_sharded(items, polisher=polisher, processes=2, concurrency=2, options={}, run_here=run_here,
                      run_there=run_there)  # fmt: skip
    return out, here


def _sleep(polisher: Any, items: Any, threads: int, options: Any, emit: Any) -> None:
    import time

    time.sleep(60)  # a shard that would take a minute


def test_an_interrupt_here_stops_the_workers_at_once(polisher: Polisher) -> None:
    from lettergen.polish.pool import run_sharded

    def run_here(shard: Any, threads: int) -> list[Any]:
        raise KeyboardInterrupt

    workers = workers_for(polisher, 1)
    with pytest.raises(KeyboardInterrupt):
        run_sharded([1, 2], polisher=polisher, processes=2, concurrency=2, options={}, run_here=run_here,
                    run_there=_sleep)  # fmt: skip
    import signal

    assert workers.procs[0].exitcode == -signal.SIGTERM  # stopped, not left to finish its minute
    assert polisher.workers is None


def test_a_shard_that_does_not_pickle_is_the_callers_error(polisher: Polisher) -> None:
    import pickle as pk

    from lettergen.polish.pool import run_sharded

    items = [1, lambda: 2]  # the second item goes to the worker, and a lambda does not pickle
    with pytest.raises((pk.PicklingError, AttributeError)):
        run_sharded(items, polisher=polisher, processes=2, concurrency=2, options={},
                    run_here=lambda shard, threads: list(shard), run_there=_sleep)  # fmt: skip


def test_a_worker_defect_reaches_the_caller(polisher: Polisher) -> None:
    with pytest.raises(ZeroDivisionError, match="a defect in the worker"):
        _fail(polisher, _defect)
    assert polisher.workers is not None  # the worker itself lives on, for the next call


@pytest.mark.parametrize(
    ("run_there", "rerun"),
    [
        (_die, [1, 3, 5]),  # died before sending anything: its whole shard runs here
        (_die_after_two, [3]),  # sent two results first (items 1 and 5 of its shard [1, 3, 5]): 3 is left
    ],
    ids=["at-once", "after-two"],
)
def test_a_dead_worker_costs_only_its_pool(polisher: Polisher, run_there: Any, rerun: list[int]) -> None:
    out, here = _fail(polisher, run_there)
    assert out == [0, 10, 20, 30, 40, 50]  # every item, in order
    assert here == [[0, 2, 4], rerun]  # what the dead worker had not sent ran here instead
    assert polisher.workers is None  # the broken pool was dropped; the next call starts a new one
