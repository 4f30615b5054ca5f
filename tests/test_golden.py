"""Golden letters for the chordoma example; same case and date give byte-identical output."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from conftest import CHORDOMA, ROOT

from lettergen import api
from lettergen.provenance.ledger import ledger_json

GOLDEN = ROOT / "tests" / "golden"
DATE = date(2026, 11, 21)
CASES = [("lmn", "md"), ("lmn", "txt"), ("lmn", "html"), ("determination", "md"), ("determination", "txt")]
APPEAL = CHORDOMA.parent / "appeal-erisa-chordoma-biopsy.yaml"


@pytest.mark.parametrize(("letter_type", "fmt"), CASES)
def test_golden_letter(letter_type: str, fmt: str) -> None:
    d = api.draft(api.load_case(CHORDOMA), letter_type=letter_type, fmt=fmt, letter_date=DATE)
    path = GOLDEN / f"chordoma.{letter_type}.{fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(d.content)
    assert d.content.decode() == path.read_text(), f"regenerate with UPDATE_GOLDEN=1 pytest {__file__}"


APPEALS = [
    ("erisa", "appeal", "physician"),
    ("erisa", "appeal", "patient"),
    ("erisa", "external_review", "physician"),
    ("erisa", "peer_to_peer", "physician"),
    ("medicare", "appeal", "physician"),
]


@pytest.mark.parametrize(("case", "letter_type", "voice"), APPEALS)
def test_golden_appeal(case: str, letter_type: str, voice: str) -> None:
    source = APPEAL if case == "erisa" else APPEAL.with_name("appeal-medicare-redetermination-sacral-biopsy.yaml")
    d = api.draft(api.load_case(source), letter_type=letter_type, fmt="md", letter_date=DATE, voice=voice)
    path = GOLDEN / f"appeal-{case}.{letter_type}.{voice}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(d.content)
    assert d.content.decode() == path.read_text(), f"regenerate with UPDATE_GOLDEN=1 pytest {__file__}"


# Beyond the chordoma letters: a case whose only code is insufficient (its memo), two payer overlays (BCBS
# MP-429 for cryoablation, BCBS of Alabama MP-119 for radiofrequency ablation), a code with no criteria on file
# (knee arthroplasty: its letter rests on the clinician's documented rationale), and one whole ledger.
OTHERS = [
    ("pet-chordoma-purpose-missing.yaml", "determination", "md"),
    ("ablation-cryo-osteoid-osteoma-bcbs-mp429.yaml", "determination", "md"),
    ("ablation-rfa-bone-metastasis-bcbsal-mp119.yaml", "determination", "txt"),
    ("not-assessed-knee-arthroplasty.yaml", "lmn", "md"),
    ("not-assessed-knee-arthroplasty.yaml", "determination", "md"),
]


@pytest.mark.parametrize(("case", "letter_type", "fmt"), OTHERS)
def test_golden_other_cases(case: str, letter_type: str, fmt: str) -> None:
    d = api.draft(api.load_case(CHORDOMA.parent / case), letter_type=letter_type, fmt=fmt, letter_date=DATE)
    path = GOLDEN / f"{Path(case).stem}.{letter_type}.{fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(d.content)
    assert d.content.decode() == path.read_text(), f"regenerate with UPDATE_GOLDEN=1 pytest {__file__}"


def test_golden_ledger() -> None:
    d = api.draft(api.load_case(CHORDOMA), letter_type="lmn", fmt="md", letter_date=DATE)
    path = GOLDEN / "chordoma.lmn.ledger.json"
    got = ledger_json(d.ledger)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text(), f"regenerate with UPDATE_GOLDEN=1 pytest {__file__}"


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        d = api.draft(api.load_case(CHORDOMA), fmt="md", letter_date=DATE)
        letter_path, ledger_path = d.write(tmp_path / str(i))
        outs.append((letter_path.read_bytes(), ledger_path.read_bytes()))
    assert outs[0] == outs[1]


def test_letter_reads_like_a_signed_letter() -> None:
    text = api.draft(api.load_case(CHORDOMA), fmt="txt", letter_date=DATE).text
    for part in (
        "Riverside Orthopaedic Oncology Clinic",
        "November 21, 2026",
        "Example Health Plan",
        "Re:",
        "Jane Q. Sample",
        "03/14/1965",
        "XYZ000000000",
        "CPT 20206",
        "C41.4",
        "SUMMARY",
        "CLINICAL HISTORY",
        "REFERENCES",
        "Sincerely,",
        "NPI 1234567893",
        "ENCLOSURES",
    ):
        assert part in text, part
    # Requests and names only the met code; what the insufficient one still needs is the office's (staff note).
    ask = next(line for line in text.splitlines() if line.startswith("For these reasons"))
    assert "20206" in ask and "38505" not in text
    assert "Is a superficial lymph node enlarged or abnormal" not in text


def test_ledger_records_every_sentence_and_hash() -> None:
    d = api.draft(api.load_case(CHORDOMA), fmt="md", letter_date=DATE)
    led = d.ledger
    assert led.letter_sha256 == __import__("hashlib").sha256(d.content).hexdigest()
    assert led.case_sha256 and led.data_files and all(len(h) == 64 for h in led.data_files.values())
    assert any(k.startswith("templates/") for k in led.data_files)
    claims = [s for s in led.sentences if s.kind == "claim"]
    assert claims and all(s.citations or s.facts for s in claims)
    assert {s.origin for s in led.sentences} == {"template"}
    assert led.validation.ok
    assert ledger_json(led).endswith("\n")
