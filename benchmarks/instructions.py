#!/usr/bin/env python3
"""Instructions per letter, stage by stage, counted with valgrind's callgrind (the README's second table).

    python benchmarks/instructions.py                 # every stage
    python benchmarks/instructions.py pipeline yaml   # some of them

Wall-clock times on a shared VM drift by up to 1.5x from run to run; an instruction count does not. Each
figure is (count for 105 iterations - count for 5) / 100, so start-up cancels out, with PYTHONHASHSEED=0
because the garbage collector's timing follows the hash seed. Needs valgrind on PATH.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "examples" / "chordoma-gluteal-mass.yaml"
STAGES = ["batch", "pipeline", "letter", "yaml", "model", "check", "material", "render", "validate", "draft"]


def _stages() -> dict[str, Any]:
    from lettergen import api
    from lettergen.case.model import case_from_mapping
    from lettergen.errors import CaseError
    from lettergen.knowledge.store import load_kb
    from lettergen.letter.claims import build_material
    from lettergen.letter.render import render_letter
    from lettergen.validation.rules import validate_letter
    from lettergen.yamlio import parse_mapping

    kb, day, text = load_kb(), date(2026, 11, 21), CASE.read_text()
    loaded = api.load_case(str(CASE), kb=kb, text=text)
    decision = api.check(loaded.case, kb)
    material = build_material(loaded.case, decision, kb, day)
    letter = render_letter(material, kb, "lmn", "md")
    data = parse_mapping(text, str(CASE), CaseError)

    def batch_case() -> None:  # what a batch worker does for one case: read, parse, draft, write two files
        from lettergen.interfaces import batch

        if not files:  # made on the first call, which both counts include: it cancels out
            files.extend(_batch_files())
        batch.run_case(files.pop())

    files: list[str] = []

    def pipeline() -> None:  # benchmarks/run.py's "file": load, check, then draft (which finds it decided)
        one = api.load_case(str(CASE), kb=kb, text=text)
        api.check(one.case, kb)
        api.draft(one, kb=kb, letter_date=day)

    def in_memory() -> None:  # benchmarks/run.py's "letter": check and draft a case in memory
        api._DECISIONS.clear()  # decided once in each round, as a case seen for the first time
        api.check(loaded.case, kb)
        api.draft(loaded, kb=kb, letter_date=day)

    return {
        "batch": batch_case,
        "pipeline": pipeline,
        "letter": in_memory,
        "yaml": lambda: parse_mapping(text, str(CASE), CaseError),
        "model": lambda: case_from_mapping(data, str(CASE)),
        "check": lambda: (api._DECISIONS.clear(), api.check(loaded.case, kb)),
        "material": lambda: build_material(loaded.case, decision, kb, day),
        "render": lambda: render_letter(material, kb, "lmn", "md"),
        "validate": lambda: validate_letter(letter, loaded.case, decision, kb),
        "draft": lambda: (api._DECISIONS.clear(), api.draft(loaded, kb=kb, letter_date=day)),
    }


def _batch_files() -> list[str]:
    """Distinct copies of the case, and a batch worker's settings."""
    from run import make_cases  # benchmarks/run.py, beside this script

    from lettergen.interfaces import batch

    work = Path(tempfile.mkdtemp(prefix="lettergen-ir-batch-", dir=_SCRATCH))
    atexit.register(shutil.rmtree, work, True)
    (work / "out").mkdir()
    files = [str(f) for f in make_cases(work, 110, [CASE.name])]
    batch._init_worker(batch.BatchOptions(letter_date=date(2026, 11, 21)), str(work / "out"))
    return files


# tmpfs where there is one: creating a file on this VM's ext4 costs up to 1 ms of CPU, which would swamp the count
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _count(stage: str, n: int, cache: str) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "LETTERGEN_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    run = subprocess.run(
        [*valgrind, sys.executable, __file__, "--run", stage, str(n)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    return int(next(ln for ln in run.stderr.splitlines() if "Collected" in ln).split()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        fn = _stages()[sys.argv[2]]
        for _ in range(int(sys.argv[3])):
            fn()
        return
    stages = sys.argv[1:] or STAGES
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}")
    with tempfile.TemporaryDirectory(prefix="lettergen-ir-") as cache:
        # Fill the knowledge-base and compiled-template caches (a batch worker's warm-up compiles every
        # template of its format), so that both counts below start alike.
        _count("batch", 1, cache)
        print("| stage | instructions per letter |")
        print("| --- | --- |")
        for stage in stages:
            per = (_count(stage, 105, cache) - _count(stage, 5, cache)) / 100
            print(f"| {stage} | {per / 1e6:.2f} M |", flush=True)


if __name__ == "__main__":
    main()
