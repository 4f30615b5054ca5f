"""Polishing on several cores: shards of the cases in worker processes, each with its own threads.

A polished letter costs some 11-15 ms of CPU in one interpreter (drafting, litellm's own work for each
call, the lock and the guard). Past a dozen calls in flight one process is busy computing while answers
wait for it, so :func:`lettergen.polish.polish_many` with ``processes=N`` splits the cases into N
interleaved shards: one runs here, the others in worker processes, ``concurrency`` split between them.

The workers belong to the :class:`~lettergen.polish.Polisher` and outlive one call. They are spawned,
never forked (litellm starts threads, and a fork copies their locks in whatever state they are), and
each imports litellm and builds its own polisher as soon as it starts, in parallel with the caller.
A polisher crosses to a worker as its settings only (see ``Polisher.__reduce__``).

``concurrency`` counts model requests in flight, and :class:`GatedTransport` holds it there: a request
waits for a slot only when it is about to go on the wire. The threads polishing letters outnumber the
slots, so that litellm's own work before and after a request, the guard and the validator run while
other letters' requests are out, and a slot is taken again the moment one comes back.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lettergen.polish import Polisher, PolishSettings

_SHARED: dict[Any, Polisher] = {}


class _Gate(threading.local):
    """This thread's share of the requests in flight, set by the thread that polishes a letter."""

    slots: threading.Semaphore | None = None
    held: bool = False  # the caller holds a slot around the whole model call (routes that bypass the gate)
    seen: bool = False  # a request of this thread went through the GatedTransport


GATE = _Gate()


def gated_client() -> Any:
    """An httpx client, configured as litellm configures its own, whose requests wait for a slot."""
    import httpx
    from litellm.llms.custom_httpx.http_handler import get_ssl_configuration, http2_enabled

    class GatedTransport(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            gate = GATE
            gate.seen = True
            if gate.slots is None or gate.held:
                return self.inner.handle_request(request)
            with gate.slots:
                response = self.inner.handle_request(request)
                try:
                    response.read()  # the answer is in before the slot is given back
                except BaseException:
                    response.close()
                    raise
                return response

        def close(self) -> None:
            self.inner.close()

    verify = get_ssl_configuration()
    http2 = http2_enabled()
    inner = httpx.HTTPTransport(verify=verify, http2=http2)
    return httpx.Client(transport=GatedTransport(inner), verify=verify, http2=http2, follow_redirects=True)


def shared_polisher(settings: PolishSettings) -> Polisher:
    """This process's polisher for these settings (a worker builds it once and keeps its HTTP client warm)."""
    from lettergen.polish import Polisher

    pol = _SHARED.get(settings)
    if pol is None:
        pol = _SHARED[settings] = Polisher(settings)
    return pol


def run_threads(fn: Callable[[Any], Any], items: Sequence[Any], concurrency: int) -> list[Any]:
    """``fn`` over ``items`` on threads, in order, with at most ``concurrency`` model requests in flight.

    There are twice as many threads as slots: while one thread's request is out, another prepares its
    next request or checks the answer it just got (see the module's docstring)."""
    slots = threading.Semaphore(max(1, concurrency))

    def one(item: Any) -> Any:
        GATE.slots = slots
        try:
            return fn(item)
        finally:
            GATE.slots = None

    with ThreadPoolExecutor(max_workers=2 * max(1, concurrency), thread_name_prefix="lettergen-polish") as pool:
        return list(pool.map(one, items))


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
