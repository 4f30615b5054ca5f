"""`lettergen validate LETTER --ledger LEDGER` after a person edited the letter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CHORDOMA, run_cli

SURVIVAL = "130.4 months"


@pytest.fixture
def drafted(tmp_path: Path) -> tuple[Path, Path]:
    code, _, err = run_cli(
        "draft", str(CHORDOMA), "--type", "determination", "-o", str(tmp_path), "--date", "2026-11-21"
    )
    assert code == 0, err
    return (
        tmp_path / "chordoma-gluteal-001.determination.md",
        tmp_path / "chordoma-gluteal-001.determination.ledger.json",
    )


def _edit(letter: Path, old: str, new: str) -> None:
    text = letter.read_text()
    assert old in text, old
    letter.write_text(text.replace(old, new, 1))


EDITS = [
    # name, old, new, exit code, fragment expected in the output
    ("unchanged", "", "", 0, "ok"),
    ("reworded", "had a median survival of", "showed a median survival of", 0, "ok"),
    ("number-changed", SURVIVAL, "150.4 months", 1, "150.4"),
    ("p-value-changed", "(p = 0.05)", "(p = 0.01)", 1, "0.01"),
    ("citation-removed", "(p = 0.05) [", "(p = 0.05) XX[", 1, "drops citation"),
    ("code-changed", "20206 meets each", "20205 meets each", 1, "20205"),
    (
        "new-number",
        "Pitfalls to avoid",
        "Pitfalls to avoid\n\nThe mass measured 9.7 cm on the scan.",
        1,
        "9.7",
    ),
    (
        "guarantee-added",
        "Pitfalls to avoid",
        "Pitfalls to avoid\n\nThis biopsy is guaranteed to find the answer.",
        1,
        "guarantee",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "code", "fragment"), EDITS, ids=[e[0] for e in EDITS])
def test_edit(drafted: tuple[Path, Path], name: str, old: str, new: str, code: int, fragment: str) -> None:
    letter, ledger = drafted
    if name == "citation-removed":
        text = letter.read_text()
        letter.write_text(re.sub(r"\(p = 0\.05\) \[\d+\]", "(p = 0.05)", text, count=1))
    elif old:
        _edit(letter, old, new)
    rc, out, err = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert rc == code, out + err
    assert fragment in out
    if code == 1:
        # names the sentence (its id) or quotes the offending text
        assert "[" in out or "'" in out


def test_bad_ledger_is_input_error(tmp_path: Path) -> None:
    letter = tmp_path / "l.md"
    letter.write_text("x")
    ledger = tmp_path / "l.json"
    ledger.write_text("{not json")
    rc, _, err = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert rc == 2 and "l.json" in err
