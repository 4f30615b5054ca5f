#!/usr/bin/env python3
"""Every bad input of the test tables, each checked in a process of its own: how many are handled, and the worst
time and memory any of them costs.

    python benchmarks/bad_inputs.py              # a Markdown summary (copied into the README)
    python benchmarks/bad_inputs.py --top 5      # and the five slowest and the five largest inputs
    python benchmarks/bad_inputs.py --timeout 30 # give up on an input after 30 s (default 60)

The inputs: ``tests/test_bad_input_table.py`` (every field of the example times several bad values, unknown keys,
deleted keys), ``tests/test_bad_input.py`` (raw files and mutations), ``tests/test_bad_input_probe.py`` (issue 21:
wrong shapes, numbers, text, leaks), and the files that are not files: a FIFO, symbolic links to a FIFO, to
``/dev/zero`` and to a folder, a 6 MB file, a file name holding a newline.

"Handled" means what the tests hold: exit 2 and one line on stderr for each problem of the input (most have one),
each starting with the file's name (escaped).
Each input runs as ``lettergen check`` in a child forked from a process that has imported lettergen and loaded the
knowledge base, so the time is that of handling the input, not of starting Python. The memory is the child's peak
resident set (``wait4``), which starts from the parent's own: the line "baseline" is that of a child checking the
valid example.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

Writer = Callable[[Path], Path]  # makes the input in a folder, returns the path to check


def _file(name: str, data: bytes) -> Writer:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return write


def inputs() -> list[tuple[str, Writer]]:
    import test_bad_input as raw
    import test_bad_input_probe as probe
    import test_bad_input_table as table
    import yaml

    out: list[tuple[str, Writer]] = []
    for name, data in table.CASES:
        out.append((f"table:{name}", _file("case.yaml", yaml.safe_dump(data, allow_unicode=True).encode())))
    for name, content, _ in raw.RAW:
        suffix = ".json" if name == "bad-json" else ".yaml"
        data = content if isinstance(content, bytes) else content.encode()
        out.append((f"raw:{name}", _file(f"case{suffix}", data)))
    for name, path, value, _ in raw.MUTATIONS:
        out.append((f"mutation:{name}", _file("case.yaml", raw.as_yaml(raw.mutate(path, value)).encode())))
    for name, (suffix, data), _ in probe.ROWS:
        out.append((f"probe:{name}", _file(f"case{suffix}", data)))

    def fifo(folder: Path) -> Path:
        os.mkfifo(folder / "case.yaml")
        return folder / "case.yaml"

    def link_to(target: Callable[[Path], Path]) -> Writer:
        def write(folder: Path) -> Path:
            (folder / "case.yaml").symlink_to(target(folder))
            return folder / "case.yaml"

        return write

    def a_fifo(folder: Path) -> Path:
        os.mkfifo(folder / "pipe")
        return folder / "pipe"

    out += [
        ("file:fifo", fifo),
        ("file:symlink-to-fifo", link_to(a_fifo)),
        ("file:symlink-to-dev-zero", link_to(lambda _: Path("/dev/zero"))),
        ("file:symlink-to-folder", link_to(lambda folder: folder)),
        ("file:6-mb", _file("case.yaml", b"a: " + b"x" * (6 << 20) + b"\n")),
        ("file:newline-in-name", _file("bad\nname.yaml", b"case_id: [unclosed\n")),
        ("file:missing", lambda folder: folder / "gone.yaml"),
    ]
    return out


def _child(path: Path, write_end: int) -> None:
    from conftest import run_cli

    start = time.perf_counter()
    try:
        code, _, stderr = run_cli("check", str(path))
    except BaseException as exc:
        code, stderr = -1, f"{type(exc).__name__}"
    elapsed = time.perf_counter() - start
    os.write(write_end, json.dumps({"code": code, "stderr": stderr, "seconds": elapsed}).encode())
    os._exit(0)


def run_one(path: Path, timeout: float) -> dict[str, Any]:
    """Check ``path`` in a forked child; its result, wall time and peak RSS (MB)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(path, write_end)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            os.close(read_end)
            return {"code": None, "stderr": "timed out", "seconds": timeout, "rss_mb": usage.ru_maxrss / 1024}
        time.sleep(0.005)
    data = b""
    while chunk := os.read(read_end, 1 << 16):
        data += chunk
    os.close(read_end)
    result: dict[str, Any] = json.loads(data) if data else {"code": None, "stderr": f"died ({status})", "seconds": 0}
    result["rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def handled(result: dict[str, Any], path: Path) -> bool:
    from lettergen.errors import one_line

    lines = result["stderr"].strip().splitlines()
    prefix = f"lettergen: {one_line(str(path))}"
    return result["code"] == 2 and bool(lines) and all(line.startswith(prefix) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()

    from lettergen.interfaces import cli  # noqa: F401 - imported before the children fork
    from lettergen.knowledge.store import load_kb

    load_kb()
    cases = inputs()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lettergen-bad-inputs-") as tmp:
        base = Path(tmp)
        warm = run_one(ROOT / "examples" / "chordoma-gluteal-mass.yaml", args.timeout)  # loads what check loads
        baseline = run_one(ROOT / "examples" / "chordoma-gluteal-mass.yaml", args.timeout)
        assert warm["code"] == baseline["code"] == 0, baseline
        for i, (name, write) in enumerate(cases):
            folder = base / str(i)
            folder.mkdir()
            path = write(folder)
            result = run_one(path, args.timeout)
            rows.append((name, result, handled(result, path)))

    times = [r["seconds"] for _, r, _ in rows]
    slowest = max(rows, key=lambda r: r[1]["seconds"])
    largest = max(rows, key=lambda r: r[1]["rss_mb"])
    failed = [name for name, _, ok in rows if not ok]
    print("| inputs tried | handled (exit 2, each line naming the file) | median time | worst time | worst peak RSS |")
    print("|---|---|---|---|---|")
    print(
        f"| {len(rows)} | {len(rows) - len(failed)} | {statistics.median(times) * 1000:.1f} ms "
        f"| {slowest[1]['seconds']:.2f} s ({slowest[0]}) | {largest[1]['rss_mb']:.0f} MB ({largest[0]}) |"
    )
    print(
        f"\nbaseline: checking the valid example took {baseline['seconds'] * 1000:.1f} ms "
        f"with a peak RSS of {baseline['rss_mb']:.0f} MB (the forked child's, parent included)"
    )
    if failed:
        print("\nnot handled:")
        for name, result, ok in rows:
            if not ok:
                print(f"  {name}: exit {result['code']}: {result['stderr'].strip()[:200]!r}")
    if args.top:
        print(f"\nslowest {args.top}:")
        for name, result, _ in sorted(rows, key=lambda r: -r[1]["seconds"])[: args.top]:
            print(f"  {result['seconds']:.3f} s  {name}")
        print(f"largest {args.top}:")
        for name, result, _ in sorted(rows, key=lambda r: -r[1]["rss_mb"])[: args.top]:
            print(f"  {result['rss_mb']:.0f} MB  {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
