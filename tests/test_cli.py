"""Listings, cards, skeletons: each with --json where it lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

JSON_COMMANDS = [
    ["citations", "list", "--json"],
    ["citations", "show", "young2015-chordoma-metastasis", "--json"],
    ["citations", "check", "--json"],
    ["criteria", "list", "--json"],
    ["criteria", "show", "20206", "--json"],
    ["codes", "show", "20982", "--json"],
]


@pytest.mark.parametrize("args", JSON_COMMANDS, ids=[" ".join(a[:2]) for a in JSON_COMMANDS])
def test_json_listings_parse(args: list[str]) -> None:
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert json.loads(out)


def test_criteria_show_traces_rules_to_findings() -> None:
    code, out, _ = run_cli("criteria", "show", "20206")
    assert code == 0
    assert ("Indications" in out and "[" in out and "Abstract" in out) or "Table" in out or "Section" in out


def test_codes_show_card_sections() -> None:
    code, out, _ = run_cli("codes", "show", "20982")
    assert code == 0
    for part in (
        "What it covers",
        "When not to use it",
        "Bundled codes",
        "Documentation checklist",
        "Terminology",
    ):
        assert part in out, part


def test_unknown_code_is_usage_error() -> None:
    code, _, err = run_cli("codes", "show", "99999")
    assert code == 2 and "99999" in err


def test_init_skeleton_has_every_question(tmp_path: Path) -> None:
    out = tmp_path / "case.yaml"
    code, _, err = run_cli("init", "--code", "20206", "--code", "38505", "-o", str(out))
    assert code == 0, err
    text = out.read_text()
    for fact in ("mass_enlarging", "node_enlarged_or_suspicious", "uncorrected_coagulopathy"):
        assert fact in text
    assert yaml.safe_load(text)["services"] == [
        {"code": "20206", "site": "", "units": 1},
        {"code": "38505", "site": "", "units": 1},
    ]


def test_init_into_an_unwritable_place_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli("init", "--code", "20206", "-o", str(blocker / "case.yaml"))
    assert code == 3 and "cannot write output" in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "not a directory" and [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lettergen", "criteria", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0 and "20206" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["criteria", "list"],
        ["check", "examples/chordoma-gluteal-mass.yaml"],
        ["batch", "examples/chordoma-gluteal-mass.yaml", "--date", "2026-11-21", "-o", "{out}"],
    ],
    ids=["criteria-list", "check", "batch"],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(args: list[str], tmp_path: Path) -> None:
    # `lettergen ... | head -1`, made certain: the pipe's reading end is closed before anything is written.
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        argv = [a.replace("{out}", str(tmp_path / "out")) for a in args]
        proc = subprocess.run([sys.executable, "-m", "lettergen", *argv], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, check=False)  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""
    if args[0] == "batch":  # the letter was written whole before the summary met the closed pipe
        assert len(list((tmp_path / "out").glob("*.lmn.md"))) == 1


STDOUT_COMMANDS = [
    ["check", "examples/chordoma-gluteal-mass.yaml", "--json"],
    ["check", "examples/chordoma-gluteal-mass.yaml"],
    ["draft", "examples/chordoma-gluteal-mass.yaml", "--date", "2026-11-21", "-o", "{out}"],
    ["batch", "examples/chordoma-gluteal-mass.yaml", "--date", "2026-11-21", "-o", "{out}"],
    ["validate", "{out}/chordoma-gluteal-001.lmn.md", "--ledger", "{out}/chordoma-gluteal-001.lmn.ledger.json"],
    ["init", "--code", "20206"],
    ["citations", "list"],
    ["criteria", "show", "20206", "--json"],
    ["codes", "show", "20982"],
    ["--help"],
]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", STDOUT_COMMANDS, ids=[" ".join(a[:2]) for a in STDOUT_COMMANDS])
def test_a_full_standard_output_is_exit_3_with_one_line(args: list[str], tmp_path: Path) -> None:
    # `lettergen check --json > /dev/full` was "internal error (OSError)", exit 1: a write error is the
    # environment's (exit 3), said in one line, for every command that writes to standard output.
    out = tmp_path / "out"
    if args[0] == "validate":
        assert run_cli("draft", str(ROOT / "examples/chordoma-gluteal-mass.yaml"), "-o", str(out))[0] == 0
    argv = [a.replace("{out}", str(out)) for a in args]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lettergen", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines() == ["lettergen: standard output: cannot write (No space left on device)"]
