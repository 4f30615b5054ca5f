"""Polishing many letters: threads that keep ``concurrency`` model requests in flight, over processes.

**Requests in flight.** ``concurrency`` counts model requests on the wire, and ``GatedTransport`` (on
litellm's httpx client) holds it there: a request waits for a slot only when it is about to be sent.
The threads polishing letters outnumber the slots two to one, so that litellm's own work before and
after a request, the guard and the validator run while other letters' requests are out, and a slot is
taken again the moment one comes back. A route with a client of its own is found on its first call, and
then each whole call holds a slot (``Polisher._complete``). The time a thread waits for a slot is counted
apart (``GATE.queued``): a letter's wait limit (``lettergen.polish.polisher.wait_bound``) counts only the model's time.

**Processes.** A polished letter costs some 11-15 ms of CPU in one interpreter (drafting, litellm's work
for each call, the lock and the guard). Past a dozen calls in flight one process is busy computing while
answers wait for it, so :func:`polish_many` with ``processes=N`` splits the cases into N interleaved
shards: one runs here, the others in worker processes, ``concurrency`` split between them. A worker
sends each letter back the moment it is done, so that moving the results overlaps the model's waits
instead of following the last of them. A worker that dies loses only the letters it had not sent; they
are polished here.

The workers belong to the :class:`~lettergen.polish.polisher.Polisher` and outlive one call. They are spawned,
never forked (litellm starts threads, and a fork copies their locks in whatever state they are), and
each imports litellm and builds its own polisher as soon as it starts, in parallel with the caller.
A polisher crosses to a worker as its settings only (see ``Polisher.__reduce__``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, Any

from lettergen.errors import LettergenError
from lettergen.polish.gate import GATE
from lettergen.polish.polisher import shared_polisher

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from lettergen.api import Draft, LoadedCase, Staged
    from lettergen.case.model import Case
    from lettergen.knowledge.store import KnowledgeBase
    from lettergen.polish.polisher import Polisher, PolishSettings

Emit = Callable[[int, Any], None]  # (index in the shard, result): a result is ready
Shard = Callable[[Any, Sequence[Any], int, dict[str, Any], Emit], None]  # a shard's work, in a worker
RunHere = Callable[[Sequence[Any], int], list[Any]]  # a shard's work, here


def run_threads(
    fn: Callable[[Any], Any], items: Sequence[Any], concurrency: int, emit: Emit | None = None
) -> list[Any]:
    """``fn`` over ``items`` on threads, in order, with at most ``concurrency`` model requests in flight;
    ``emit(index, result)`` hears of each result as soon as it is ready."""
    slots = threading.Semaphore(max(1, concurrency))

    def one(index: int) -> Any:
        GATE.slots = slots
        try:
            result = fn(items[index])
        finally:
            GATE.slots = None
        if emit is not None:
            emit(index, result)
        return result

    with ThreadPoolExecutor(max_workers=2 * max(1, concurrency), thread_name_prefix="lettergen-polish") as pool:
        return list(pool.map(one, range(len(items))))


# -- many letters ------------------------------------------------------------------------------------


def letters(
    pol: Polisher,
    *,
    letter_type: str | None,
    fmt: str,
    letter_date: date | None,
    kb: KnowledgeBase | None,
    strict: bool,
) -> Callable[[Sequence[LoadedCase | Case], int, Emit | None], list[Draft | LettergenError]]:
    """The work of :func:`polish_many` in one process: draft and polish cases on threads."""
    from lettergen import api
    from lettergen.knowledge.store import load_kb

    base = kb or load_kb()

    def stage(item: LoadedCase | Case, ahead: threading.Semaphore) -> Staged | LettergenError:
        ahead.acquire()
        try:
            return api.stage(item, letter_type=letter_type, fmt=fmt, letter_date=letter_date, kb=base)
        except LettergenError as exc:
            return exc

    def finish(staged: Future[Staged | LettergenError], ahead: threading.Semaphore) -> Draft | LettergenError:
        try:
            got = staged.result()
        finally:
            ahead.release()
        if isinstance(got, LettergenError):
            return got
        try:
            return api.finish(got, polish=pol, strict=strict)
        except LettergenError as exc:
            return exc

    def run(items: Sequence[LoadedCase | Case], threads: int, emit: Emit | None) -> list[Draft | LettergenError]:
        # One thread renders the template letters ahead, in order, while the others wait on the model: a
        # polishing thread then goes from an answer to its next call without rendering in between, and the
        # rendering lands in the time the first calls wait. At most two letters per slot wait rendered.
        ahead = threading.Semaphore(2 * max(1, threads))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lettergen-stage") as renderer:
            staged = [renderer.submit(stage, item, ahead) for item in items]
            return run_threads(lambda got: finish(got, ahead), staged, threads, emit)

    return run


def polish_many(
    cases: Sequence[LoadedCase | Case],
    *,
    model: str,
    api_base: str | None = None,
    concurrency: int = 8,
    letter_type: str | None = None,
    fmt: str = "md",
    letter_date: date | None = None,
    kb: KnowledgeBase | None = None,
    strict: bool = True,
    polisher: Polisher | None = None,
    processes: int = 1,
    **options: Any,
) -> list[Draft | LettergenError]:
    """Draft and polish many letters with at most ``concurrency`` model requests in flight.

    Returns one result per case, in order: the Draft, or the LettergenError that case raised (one bad
    case never stops the others). ``options`` are :class:`~lettergen.polish.polisher.PolishSettings` fields
    (timeout, cache_dir...). ``processes`` > 1 spreads the cases over that many processes; their
    workers stay with the polisher for later calls.
    """
    from lettergen.polish.polisher import make_polisher

    pol = polisher or make_polisher(model, api_base, **options)
    shard: dict[str, Any] = {
        "letter_type": letter_type, "fmt": fmt, "letter_date": letter_date, "kb": kb, "strict": strict
    }  # fmt: skip
    run = letters(pol, **shard)
    try:
        return run_sharded(
            cases,
            polisher=pol,
            processes=processes,
            concurrency=concurrency,
            options=shard,
            run_here=lambda items, threads: run(items, threads, None),
        )
    finally:
        if polisher is None:  # made here for this call: nobody else will reuse its workers
            pol.close_workers()


def polish_shard(polisher: Polisher, items: Sequence[Any], threads: int, options: dict[str, Any], emit: Emit) -> None:
    """In a worker: one shard of :func:`polish_many` (the default ``run_there``)."""
    letters(polisher, **options)(items, threads, emit)


# -- worker processes --------------------------------------------------------------------------------


def _worker_main(conn: Connection, settings: PolishSettings) -> None:
    """A worker's life: build the polisher, then run shards, sending each result as it is ready."""
    # Ctrl-C reaches the whole process group; the caller decides what an interrupt stops (close_workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shared_polisher(settings)  # imports litellm now, not when the first shard arrives
    lock = threading.Lock()  # the polishing threads share one pipe

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the caller is gone
            return
        if task is None:
            return
        fn, polisher, items, threads, options = task
        try:
            fn(polisher, items, threads, options, lambda i, r: send(("result", i, r)))
        except Exception as exc:  # a defect, not a case's error (those are results): the caller raises it
            try:
                send(("failed", exc))
            except Exception:  # it does not pickle
                send(("failed", RuntimeError(f"{type(exc).__name__}: {exc}")))
        else:
            send(("done",))


class _WorkerDied(Exception):
    """A worker process ended (killed, out of memory) before it finished its shard."""


class Workers:
    """``n`` spawned processes that polish shards for one polisher's settings."""

    def __init__(self, settings: PolishSettings, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.lock = threading.Lock()  # one sharded call at a time: a worker runs one shard at a time
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(n):  # started now, so that they warm up while the caller works
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(there, settings), name="lettergen-polish", daemon=True)
            proc.start()
            there.close()  # the worker holds the only other end: its death reads here as end of file
            self.conns.append(here)
            self.procs.append(proc)

    def run(self, k: int, task: tuple[Any, ...], size: int) -> tuple[dict[int, Any], BaseException | None]:
        """Send worker ``k`` a shard of ``size`` items; collect what it sends back until it is done.

        Returns the results by index, and the worker's failure: its own exception, or _WorkerDied."""
        conn = self.conns[k]
        got: dict[int, Any] = {}
        try:
            conn.send(task)
            while True:
                message = conn.recv()
                if message[0] == "result":
                    got[message[1]] = message[2]
                elif message[0] == "failed":
                    return got, message[1]
                else:
                    return got, None if len(got) == size else _WorkerDied("a worker lost results")
        except (EOFError, OSError):
            return got, _WorkerDied("a polish worker process ended before its shard was done")

    def close(self, wait: bool = True) -> None:
        """Stop the workers: when they are done with their shards (``wait``), or now."""
        for conn in self.conns:
            with contextlib.suppress(OSError):  # already gone
                conn.send(None)
        for conn, proc in zip(self.conns, self.procs, strict=True):
            proc.join(timeout=5 if wait else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            conn.close()


def workers_for(polisher: Polisher, n: int) -> Workers:
    """At least ``n`` worker processes for this polisher's settings, started once and kept on the polisher
    (:meth:`Polisher.close_workers` stops them)."""
    with polisher.workers_lock:
        current = polisher.workers
        if isinstance(current, Workers) and current.n >= n:
            return current
        if current is not None:
            current.close()
        started = Workers(polisher.settings, n)
        polisher.workers = started
        return started


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` shares that differ by at most one, each at least one."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


def run_sharded(
    items: Sequence[Any],
    *,
    polisher: Polisher,
    processes: int,
    concurrency: int,
    options: dict[str, Any],
    run_here: RunHere,
    run_there: Shard = polish_shard,
) -> list[Any]:
    """Results for ``items`` in order: shard 0 through ``run_here`` in this process, the rest through
    ``run_there`` (a module-level function, so that it pickles) in workers, with ``concurrency`` split.

    A worker that dies takes only its pool with it: what it had not sent back is run here instead.
    """
    n = max(1, min(processes, len(items), concurrency))
    if n == 1:
        return run_here(items, concurrency)
    shards = [list(range(i, len(items), n)) for i in range(n)]
    parts = [[items[j] for j in idx] for idx in shards]
    shares = split(concurrency, n)
    workers = workers_for(polisher, n - 1)
    there: list[tuple[dict[int, Any], BaseException | None]] = [({}, None)] * (n - 1)

    def collect(k: int) -> None:
        task = (run_there, polisher, parts[k + 1], shares[k + 1], options)
        try:
            there[k] = workers.run(k, task, len(parts[k + 1]))
        except Exception as exc:  # the shard would not pickle: the caller raises it
            there[k] = ({}, exc)

    with workers.lock:
        # Each worker's results arrive on a thread of their own (unpickled there, while this process waits
        # on the model), so nothing is left to move once the last answer is in.
        receivers = [threading.Thread(target=collect, args=(k,), daemon=True) for k in range(n - 1)]
        for t in receivers:
            t.start()
        try:
            done = [run_here(parts[0], shares[0])]
        except BaseException:  # an interrupt or a defect here: the workers would polish on for nobody
            polisher.close_workers(wait=False)
            raise
        finally:
            for t in receivers:
                t.join()
    for k, (got, failure) in enumerate(there, start=1):
        if isinstance(failure, _WorkerDied):
            polisher.close_workers()
            missing = [j for j in range(len(parts[k])) if j not in got]
            for j, r in zip(missing, run_here([parts[k][j] for j in missing], shares[k]), strict=True):
                got[j] = r
        elif failure is not None:
            raise failure
        done.append([got[j] for j in range(len(parts[k]))])
    results: list[Any] = [None] * len(items)
    for idx, shard_results in zip(shards, done, strict=True):
        for j, r in zip(idx, shard_results, strict=True):
            results[j] = r
    return results
