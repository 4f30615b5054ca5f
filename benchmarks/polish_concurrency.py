"""Polish 100 letters concurrently against a loopback model that answers 200 ms after each request arrives.

    python benchmarks/polish_concurrency.py [--letters 100] [--concurrency 16] [--latency 0.2] [--processes N]
                                            [--repeat N] [--model openai/faithful]

Reports the wall time against the ideal (model calls x latency / concurrency); the target is within 1.3x.
The letters are the example cases, cycled; the cache is off so that every letter makes its call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from lettergen import api
from lettergen.errors import LettergenError
from lettergen.polish.polisher import make_polisher
from lettergen.polish.pool import polish_many

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--letters", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="default: one per core")
    ap.add_argument("--repeat", type=int, default=1, help="measured runs (the same workers); the median is reported")
    ap.add_argument(
        "--model", default="openai/faithful", help="litellm route to the fake (hosted_vllm/faithful: no OpenAI SDK)"
    )
    args = ap.parse_args()
    # The fake model runs in its own process, as a real server would, and counts the requests it answers.
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm.py"), str(args.latency)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    # Only the examples that draft offline as their own letter type (an appeal of a code whose criteria are
    # not met is refused by design and would only measure an error path).
    examples = []
    for path in sorted((ROOT / "examples").glob("[a-z]*.yaml")):
        try:
            api.draft(api.load_case(path), letter_date=date(2026, 11, 21))
            examples.append(path)
        except LettergenError:
            pass
    cases = [api.load_case(examples[i % len(examples)]) for i in range(args.letters)]
    day = date(2026, 11, 21)
    polisher = make_polisher(args.model, api_base=url, use_cache=False, timeout=30)
    procs = max(1, args.processes)
    # Warm-up, not measured: litellm's HTTP client here, and the worker processes (started with the pool,
    # each importing litellm once) when there is more than one.
    polish_many(cases[: 2 * procs], model="", polisher=polisher, concurrency=2 * procs, letter_date=day, strict=False,
                processes=procs)  # fmt: skip
    walls, cpus, calls, failed, statuses = [], [], 0, 0, set()
    for _ in range(max(1, args.repeat)):
        start, cpu = time.perf_counter(), time.process_time()
        results = polish_many(
            cases, model="", polisher=polisher, concurrency=args.concurrency, letter_date=day, strict=False,
            processes=procs,
        )  # fmt: skip
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        calls = sum(r.ledger.polish.calls for r in results if not isinstance(r, Exception))
        failed += sum(1 for r in results if isinstance(r, Exception))
        statuses |= {r.ledger.polish.status for r in results if not isinstance(r, Exception)}
    server_cpu = _cpu_seconds(server.pid)
    server.terminate()
    server.wait()
    polisher.close_workers()
    ideal = calls * args.latency / args.concurrency
    wall = statistics.median(walls)
    print(
        json.dumps(
            {
                "letters": args.letters,
                "model": args.model,
                "concurrency": args.concurrency,
                "processes": procs,
                "latency_s": args.latency,
                "model_calls": calls,  # per run
                "runs": len(walls),
                "wall_s": round(wall, 3),  # the median run
                "ideal_s": round(ideal, 3),
                "ratio": round(wall / ideal, 3),
                "ratios": [round(w / ideal, 3) for w in walls],
                "target_ratio": 1.3,
                "model_server_cpu_s": server_cpu,  # the fake model shares the machine's cores
                "client_cpu_s": round(statistics.median(cpus), 3),  # this process only, not the workers
                "cores": os.cpu_count(),
                "failed": failed,
                "polish_status": sorted(statuses),
                "machine": f"{platform.machine()} {platform.system()}, Python {platform.python_version()}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
