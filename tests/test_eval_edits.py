"""`lettergen eval edits`: the mutation suite of lies and harmless edits against `lettergen validate`.

The whole suite over every example runs in CI (.ci/run); here it runs over two examples, one with a denial,
so that every kind applies, and the LibreOffice round trip runs on the chordoma letter where LibreOffice is
installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api
from lettergen.evals.edits import (
    HARMLESS_FILE,
    HARMLESS_TEXT,
    LIES,
    ROUND_TRIP,
    letter_text,
    run_edits,
    saved_by_libreoffice,
)
from lettergen.validation.edits import validate_edited

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("examples")
    for name in ("biopsy-sacral-lesion.yaml", "appeal-erisa-chordoma-biopsy.yaml"):
        shutil.copy(EXAMPLES / name, folder / name)
    # md and docx here (html, and the LibreOffice save of every letter, in the full CI run and the test below).
    return run_edits(folder, round_trip=False, formats=("md", "docx"))


def test_at_least_fifteen_lies_and_six_harmless_kinds() -> None:
    assert len(LIES) >= 15
    assert len(HARMLESS_TEXT) + len(HARMLESS_FILE) + 1 >= 6


def test_every_lie_is_caught(report) -> None:  # type: ignore[no-untyped-def]
    applicable = {"exclusions_said_clear"}  # needs an open exclusion, which these examples do not have
    for kind in report.lies:
        if kind.kind in applicable and not kind.applied:
            continue
        assert kind.applied, kind.kind
        assert kind.flagged == kind.applied, (kind.kind, kind.misses[:2])


def test_no_harmless_edit_is_flagged(report) -> None:  # type: ignore[no-untyped-def]
    for kind in report.harmless:
        if kind.kind == ROUND_TRIP:
            continue
        assert kind.applied, kind.kind
        assert kind.flagged == 0, (kind.kind, kind.misses[:2])


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_the_chordoma_letter_validates_untouched_and_after_a_libreoffice_save(tmp_path: Path) -> None:
    code, _, err = run_cli("draft", str(CHORDOMA), "--format", "docx", "-o", str(tmp_path), "--date", "2026-11-21")
    assert code == 0, err
    letter = tmp_path / "chordoma-gluteal-001.lmn.docx"
    ledger = tmp_path / "chordoma-gluteal-001.lmn.ledger.json"
    rc, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert rc == 0, out
    (saved,) = saved_by_libreoffice([letter.read_bytes()])
    letter.write_bytes(saved)
    rc, out, _ = run_cli("validate", str(letter), "--ledger", str(ledger))
    assert rc == 0, out
    # and a lie in the saved document is still caught
    ledger_model = api.read_ledger(ledger) if hasattr(api, "read_ledger") else None
    if ledger_model is None:
        from lettergen.provenance.ledger import read_ledger

        ledger_model = read_ledger(ledger)
    text = letter_text("docx", saved).replace("meets each", "misses each", 1)
    assert not validate_edited(text, ledger_model).ok
