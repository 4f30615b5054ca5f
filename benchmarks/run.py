#!/usr/bin/env python3
"""lettergen benchmarks: one command, figures printed as a Markdown table (copied into the README).

    python benchmarks/run.py              # full: 10,000-case batch
    python benchmarks/run.py --cases 1000
    python benchmarks/run.py --repeat 3   # ranges over three runs (the README's figures)
    python benchmarks/run.py --instructions  # also the cold start in instructions (valgrind's callgrind)
    python benchmarks/run.py --out-root /dev/shm  # the batch writes there (default: the system temp folder)

1. in-process latency of check + draft (+ its validation) for one letter, median and p99: on a case in
   memory (the issue's measure), and again with the case's YAML parsed first; against rendering the same
   letter's template alone;
2. CLI cold start of ``lettergen check`` against a bare ``python -c "import jinja2, pydantic, typer, yaml"``;
3. batch throughput with ``--jobs 2`` on N generated cases, and the peak memory of the pool (parent and
   children summed, sampled with psutil; also the largest single process from getrusage). Every case
   creates two files, so the CPU cost of creating a file where the batch writes is measured and printed
   beside it: on one VM it ranged from 25 us to 800 us depending on the folder, enough to halve the rate;
   and the CPU the batch used per case (the CLI and its workers, from getrusage): N cores can at best
   run N / that many cases a second, however the work is spread.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "examples" / "chordoma-gluteal-mass.yaml"
TEMPLATES = ["chordoma-gluteal-mass.yaml", "biopsy-sacral-lesion.yaml", "proton-sacral-chordoma.yaml"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def calibrate() -> float:
    """CPU seconds of a fixed pure-Python loop: this VM's speed drifts by up to 1.7x within an hour, and
    every wall-clock figure moves with it, so each run prints this beside its figures."""
    start = time.process_time()
    d: dict[int, str] = {}
    for i in range(3_000_000):
        d[i % 1000] = str(i) + "x"
    return time.process_time() - start


def latency(n: int = 2000) -> dict[str, float]:
    """Median and p99 of three timings, taken in blocks in turn so that the machine's drift touches all
    three alike:

    * ``letter``: check + draft + validate on a case already in memory (``api.check``, then ``api.draft``
      given that decision, which validates): what the Python API and the HTTP service (a JSON body) pay;
    * ``file``: the same after parsing the case's YAML text into a checked case (``api.load_case``), as the
      CLI and a batch do;
    * ``template``: rendering the same letter's template alone.
    """
    from lettergen import api
    from lettergen.knowledge.store import load_kb
    from lettergen.letter.claims import build_material
    from lettergen.letter.render import render_letter

    kb = load_kb()
    text = CASE.read_text()
    when = date(2026, 11, 21)
    loaded = api.load_case(str(CASE), kb=kb, text=text)
    material = build_material(loaded.case, api.check(loaded.case, kb), kb, when)

    def letter() -> None:
        decision = api.check(loaded.case, kb, letter_date=when)
        api.draft(loaded, kb=kb, letter_date=when, decision=decision)  # renders and validates the letter

    def file() -> None:
        one = api.load_case(str(CASE), kb=kb, text=text)
        decision = api.check(one.case, kb, letter_date=when)
        api.draft(one, kb=kb, letter_date=when, decision=decision)

    def template() -> None:
        render_letter(material, kb, "lmn", "md")

    fns = {"letter": letter, "file": file, "template": template}
    times: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter
    # Blocks of one function at a time (a loop of the same work, as timeit measures), the three in turn
    # for several rounds: calling them one after the other made each start with caches the others had
    # filled, and timed that instead (+35% for the template alone).
    rounds = 4
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(25):
                fn()
            for _ in range(n // rounds):
                t = clock()
                fn()
                times[name].append(clock() - t)
    out = {}
    for name, ts in times.items():
        out[f"{name}_median_ms"] = statistics.median(ts) * 1000
        out[f"{name}_p99_ms"] = pct(ts, 99) * 1000
    return out


def cold_start(runs: int = 15) -> dict[str, float]:
    py = sys.executable
    cmds = {
        "bare": [py, "-c", "import jinja2, pydantic, typer, yaml"],
        "check": [py, "-m", "lettergen", "check", str(CASE)],
    }
    out = {}
    # Compare like with like: both sides read compiled bytecode (PYTHONDONTWRITEBYTECODE would make every
    # start-up recompile every module and measure the compiler instead).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([py, "-m", "compileall", "-q", *sys.path[1:], str(ROOT / "lettergen")], capture_output=True, env=env)
    for name, cmd in cmds.items():
        subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the file cache
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            ts.append(time.perf_counter() - t)
        out[f"{name}_s"] = statistics.median(ts)
    return out


def cold_start_instructions() -> dict[str, float] | None:
    """The same comparison in instructions executed (valgrind's callgrind), which do not drift with the
    machine's load as seconds do; None without valgrind. About a minute: callgrind runs some 50x slower."""
    if shutil.which("valgrind") is None:
        return None
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = {}
    for name, cmd in (
        ("bare", [py, "-c", "import jinja2, pydantic, typer, yaml"]),
        ("check", [py, "-m", "lettergen", "check", str(CASE)]),
    ):
        subprocess.run(cmd, check=True, capture_output=True, env=env)  # bytecode and caches written
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        out[name] = float(next(ln for ln in run.stderr.splitlines() if "Collected" in ln).split()[-1])
    return out


def make_cases(folder: Path, n: int, templates: list[str] = TEMPLATES) -> list[Path]:
    """``n`` case files in ``folder``, copies of the example ``templates`` in turn, each with its own case_id
    (a batch skips a case whose letter it has already written)."""
    texts = [(ROOT / "examples" / t).read_text() for t in templates]
    files = []
    for i in range(n):
        text = texts[i % len(texts)]
        first = text.split("case_id:", 1)[1].split("\n", 1)[0].strip()
        f = folder / f"case-{i:05d}.yaml"
        f.write_text(text.replace(f"case_id: {first}", f"case_id: bench-{i:05d}", 1))
        files.append(f)
    return files


def file_cost_us(folder: Path, n: int = 300) -> float:
    """CPU microseconds to create (and remove) one empty file in ``folder``: the filesystem's share of a case."""
    start = time.process_time()
    for i in range(n):
        os.close(os.open(folder / f".probe-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for i in range(n):
        os.unlink(folder / f".probe-{i}")
    return (time.process_time() - start) / n * 1e6


def batch(n: int, jobs: int = 2, out_root: str | None = None) -> dict[str, float]:
    import psutil
    from mail_merge import mail_merge, templates

    work = Path(tempfile.mkdtemp(prefix="lettergen-bench-", dir=out_root))
    try:
        (work / "out").mkdir()
        create_us = file_cost_us(work / "out")
        files = make_cases(work / "cases", n) if (work / "cases").mkdir() is None else []
        cmd = [
            sys.executable,
            "-m",
            "lettergen",
            "batch",
            *map(str, files),
            "-o",
            str(work / "out"),
            "--jobs",
            str(jobs),
        ]
        cmd += ["--date", "2026-11-21"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peak = 0
        while proc.poll() is None:
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - t
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"batch failed ({proc.returncode}): {stderr.decode()[-2000:]}")
        letters = len(list((work / "out").glob("*.lmn.md")))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its workers, all reaped by now
        # The floor, in the same run on the same cases: a bare Jinja mail merge writing the same three files.
        (work / "merge").mkdir()
        floor = mail_merge(files, work / "merge", templates(TEMPLATES), jobs)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        largest = after.ru_maxrss / 1024
        return {
            "cases": n,
            "letters": letters,
            "seconds": wall,
            "letters_per_s": letters / wall,
            "merge_letters_per_s": floor["letters_per_s"],
            "of_merge": letters / wall / floor["letters_per_s"],
            "peak_pool_mb": peak / 2**20,
            "largest_process_mb": largest,
            "file_create_us": create_us,
            "cpu_ms_per_case": cpu / n * 1e3,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def span(values: list[float], fmt: str) -> str:
    """One figure, or the range over repeated runs (this kind of machine drifts from run to run)."""
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}}-{hi:{fmt}}"


def each(values: list[float], fmt: str) -> str:
    """Every run's figure, in run order: for the row a target is read against, a range would hide how many
    runs met it."""
    return ", ".join(format(v, fmt) for v in values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times and report the ranges")
    ap.add_argument("--instructions", action="store_true", help="also count cold-start instructions (valgrind)")
    ap.add_argument("--out-root", default=None, help="where the batch writes (default: the system temp folder)")
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({sys.executable}), {platform.system()} {platform.release()}"
    )
    runs = [
        (latency(), cold_start(), batch(args.cases, args.jobs, args.out_root), calibrate())
        for _ in range(max(1, args.repeat))
    ]
    lat = {k: [r[0][k] for r in runs] for k in runs[0][0]}
    cold = {k: [r[1][k] for r in runs] for k in runs[0][1]}
    bat = {k: [float(r[2][k]) for r in runs] for k in runs[0][2]}
    ratio = [r[0]["letter_median_ms"] / r[0]["template_median_ms"] for r in runs]
    start = [r[1]["check_s"] / r[1]["bare_s"] for r in runs]
    print(f"{len(runs)} run(s); a range is min-max over the runs")
    print(f"machine speed: a fixed Python loop took {span([r[3] for r in runs], '.2f')} s of CPU")
    print("| measure | figure | target |")
    print("| --- | --- | --- |")
    print(
        f"| check + draft + validate, one letter, case in memory | median {each(lat['letter_median_ms'], '.2f')} ms, "
        f"p99 {span(lat['letter_p99_ms'], '.2f')} ms | <= 1.5 ms median |"
    )
    print(
        f"| the same, parsing the case's YAML first | median {span(lat['file_median_ms'], '.2f')} ms, "
        f"p99 {span(lat['file_p99_ms'], '.2f')} ms | |"
    )
    print(
        f"| template render alone, same letter | median {span(lat['template_median_ms'], '.2f')} ms "
        f"(case in memory = {span(ratio, '.1f')}x) | within 5x |"
    )
    print(
        f"| cold start `lettergen check` | {span(cold['check_s'], '.3f')} s vs bare imports "
        f"{span(cold['bare_s'], '.3f')} s ({span(start, '.2f')}x) | <= 2.0x |"
    )
    counted = cold_start_instructions() if args.instructions else None
    if counted:
        print(
            f"| cold start `lettergen check`, instructions | {counted['check'] / 1e6:,.0f} M vs bare imports "
            f"{counted['bare'] / 1e6:,.0f} M ({counted['check'] / counted['bare']:.2f}x) | <= 1.5x |"
        )
    print(
        f"| batch --jobs {args.jobs}, {args.cases} cases | {span(bat['letters_per_s'], '.0f')} letters/s "
        f"({span(bat['seconds'], '.1f')} s; creating a file there: {span(bat['file_create_us'], '.0f')} us of CPU) "
        "| |"
    )
    print(
        f"| bare Jinja mail merge of the same letters, same files, {args.jobs} processes | "
        f"{span(bat['merge_letters_per_s'], '.0f')} letters/s (the batch = {each(bat['of_merge'], '.2f')}x) "
        "| batch >= 0.5x |"
    )
    cpu = bat["cpu_ms_per_case"]
    print(
        f"| the batch's CPU (parent and workers, start-up included) per case | {span(cpu, '.2f')} ms: "
        f"{args.jobs} cores give at most {span([args.jobs * 1e3 / c for c in cpu], '.0f')} letters/s | |"
    )
    print(
        f"| batch peak memory (pool summed) | {span(bat['peak_pool_mb'], '.0f')} MB "
        f"(largest process {span(bat['largest_process_mb'], '.0f')} MB) | < 300 MB |"
    )


if __name__ == "__main__":
    main()
