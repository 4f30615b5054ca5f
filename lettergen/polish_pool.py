"""Polishing on several cores: shards of the cases in worker processes, each with its own threads.

A polished letter costs some 11-15 ms of CPU in one interpreter (drafting, litellm's own work for each
call, the lock and the guard). Past a dozen calls in flight one process is busy computing while answers
wait for it, so :func:`lettergen.polish.polish_many` with ``processes=N`` splits the cases into N
interleaved shards: one runs here, the others in worker processes, ``concurrency`` split between them.

The workers belong to the :class:`~lettergen.polish.Polisher` and outlive one call. They are spawned,
never forked (litellm starts threads, and a fork copies their locks in whatever state they are), and
each imports litellm and builds its own polisher as soon as it starts, in parallel with the caller.
A polisher crosses to a worker as its settings only (see ``Polisher.__reduce__``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lettergen.polish import Polisher, PolishSettings

_SHARED: dict[Any, Polisher] = {}


def shared_polisher(settings: PolishSettings) -> Polisher:
    """This process's polisher for these settings (a worker builds it once and keeps its HTTP client warm)."""
    from lettergen.polish import Polisher

    pol = _SHARED.get(settings)
    if pol is None:
        pol = _SHARED[settings] = Polisher(settings)
    return pol


def _start_worker(settings: PolishSettings) -> None:
    shared_polisher(settings)  # imports litellm now, not when the first shard arrives


def _ready() -> bool:
    return True


def polish_shard(polisher: Polisher, items: Sequence[Any], concurrency: int, options: dict[str, Any]) -> list[Any]:
    """In a worker: :func:`lettergen.polish.polish_many` on one shard (the default ``run_there``)."""
    from lettergen.polish import polish_many

    return polish_many(items, model="", polisher=polisher, concurrency=concurrency, processes=1, **options)


Shard = Callable[[Any, Sequence[Any], int, dict[str, Any]], list[Any]]


class Workers:
    """A pool of ``n`` spawned processes that polish shards for one polisher's settings."""

    def __init__(self, settings: PolishSettings, n: int) -> None:
        self.n = n
        self.pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(settings,),
        )
        for _ in range(n):  # start every worker now, so that they warm up while the caller works
            self.pool.submit(_ready)

    def submit(
        self, fn: Shard, polisher: Polisher, items: Sequence[Any], threads: int, options: dict[str, Any]
    ) -> Future[Any]:
        return self.pool.submit(fn, polisher, items, threads, options)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


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
    run_here: Callable[[Sequence[Any], int], list[Any]],
    run_there: Shard = polish_shard,
) -> list[Any]:
    """Results for ``items`` in order: shard 0 through ``run_here`` in this process, the rest through
    ``run_there`` (a module-level function, so that it pickles) in workers, with ``concurrency`` split.

    A worker that dies takes only its pool with it: its shard is run here instead.
    """
    n = max(1, min(processes, len(items), concurrency))
    if n == 1:
        return run_here(items, concurrency)
    shards = [list(range(i, len(items), n)) for i in range(n)]
    parts = [[items[j] for j in idx] for idx in shards]
    shares = split(concurrency, n)
    workers = polisher.workers(n - 1)
    futures = [
        workers.submit(run_there, polisher, part, share, options)
        for part, share in zip(parts[1:], shares[1:], strict=True)
    ]
    done = [run_here(parts[0], shares[0])]
    for part, share, fut in zip(parts[1:], shares[1:], futures, strict=True):
        try:
            done.append(fut.result())
        except BrokenProcessPool:
            polisher.close_workers()
            done.append(run_here(part, share))
    results: list[Any] = [None] * len(items)
    for idx, shard_results in zip(shards, done, strict=True):
        for j, r in zip(idx, shard_results, strict=True):
            results[j] = r
    return results
