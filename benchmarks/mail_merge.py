"""The floor a batch is measured against: a bare Jinja mail merge of the same letters, writing the same files.

For each case file it does what the simplest possible letter generator would: read the YAML, render one
Jinja template (the example's drafted letter, with the patient's name, birth date, member id and case id as
variables), and write the letter, a JSON record and a notes file (three files, as ``lettergen batch`` writes
per case), each atomically (write a temporary file, then rename), over ``jobs`` processes. It decides
nothing, cites nothing and validates nothing: what lettergen adds costs the difference.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The fastest safe loader there is, as lettergen's own reader uses: the floor must not be slowed by the pure-Python
# parser where the C one is installed.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def templates(names: list[str]) -> list[str | None]:
    """Each example's drafted LMN as a Jinja template, the patient's identifiers made variables; None for an
    example lettergen drafts no LMN for (no code met: a batch skips it, and so does the merge)."""
    sys.path.insert(0, str(ROOT))
    from lettergen import api
    from lettergen.errors import NothingToDraft

    out: list[str | None] = []
    for name in names:
        loaded = api.load_case(ROOT / "examples" / name)
        try:
            d = api.draft(loaded, letter_type="lmn", letter_date=date(2026, 11, 21))
        except NothingToDraft:
            out.append(None)
            continue
        p = loaded.case.patient
        text = d.text.replace("{", "{{ '{' }}")
        text = text.replace(p.name, "{{ patient.name }}").replace(p.birth_date.strftime("%m/%d/%Y"), "{{ dob }}")
        if p.member_id:
            text = text.replace(p.member_id, "{{ patient.member_id }}")
        out.append(text)
    return out


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _merge(args: tuple[list[tuple[str, int]], list[str | None], str]) -> int:
    files, sources, out = args
    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
    compiled = [env.from_string(s) if s is not None else None for s in sources]
    done = 0
    for name, which in files:
        template = compiled[which]
        if template is None:
            continue
        data = yaml.load(Path(name).read_text(encoding="utf-8"), Loader=_LOADER)
        dob = data["patient"]["birth_date"]
        dob = dob.strftime("%m/%d/%Y") if hasattr(dob, "strftime") else dob
        letter = template.render(patient=data["patient"], dob=dob)
        base = Path(out) / f"{data['case_id']}.lmn"
        _write(base.with_suffix(".lmn.md"), letter.encode("utf-8"))
        _write(base.with_suffix(".lmn.ledger.json"), json.dumps(data, default=str, indent=2).encode("utf-8"))
        _write(base.with_suffix(".lmn.notes.md"), b"")
        done += 1
    return done


def mail_merge(files: list[Path], out: Path, sources: list[str | None], jobs: int = 2) -> dict[str, float]:
    """Letters per second of the bare merge over ``files`` (file i made from example i mod len(sources)) into
    ``out`` with ``jobs`` processes."""
    indexed = [(str(f), i % len(sources)) for i, f in enumerate(files)]
    shards = [indexed[i::jobs] for i in range(jobs)]
    t = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        done = sum(pool.map(_merge, [(s, sources, str(out)) for s in shards]))
    wall = time.perf_counter() - t
    return {"letters": done, "seconds": wall, "letters_per_s": done / wall}
