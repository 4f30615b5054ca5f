"""Issue 21, points 1-4 and 7: the malformed inputs a fresh probe found handled badly, each a row that failed
before. Every row gives exit 2 for ``check`` and ``draft``, one line on stderr that starts with the file and holds
the expected fragment, no traceback, nothing written, and no patient identifier of the case in the message.

1. shapes: a YAML tag its value does not fit, a FHIR element of the wrong JSON type (named by entry, resource type
   and field, never ignored or printed as a Python value), a number too long to be one;
2. numbers: finite and within the range the question declares;
3. text: identifiers in ASCII letters and digits, checked before they are normalised; no control characters,
   bidi overrides or isolates, or line separators in names and free text;
4. files: only regular files are read, up to the size cap; a file name with a newline stays on one line;
7. a member id put where a code, a policy set or a fact id belongs is described, not echoed.

The hypothesis test at the end builds FHIR resources of wrong shapes (one value replaced by a value of another JSON
type) and holds that the only exception is a CaseError naming the Bundle.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, ROOT, run_cli, set_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettergen.errors import CaseError, LettergenError

BASE: dict[str, Any] = yaml.safe_load(CHORDOMA.read_text())
APPEAL: dict[str, Any] = yaml.safe_load((EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml").read_text())
FHIR: dict[str, Any] = json.loads((EXAMPLES / "chordoma-gluteal-mass.fhir.json").read_text())
MEMBER_ID = "XYZ000000000"
# The patient identifiers of the two cases: no error message may carry one.
IDENTIFIERS = [MEMBER_ID, "Jane Q. Sample", "1965-03-14", APPEAL["patient"]["member_id"], APPEAL["patient"]["name"]]

# A row: id, (file suffix, file bytes), the fragment the one line must hold.
Row = tuple[str, tuple[str, bytes], str]


def _yaml(data: dict[str, Any]) -> tuple[str, bytes]:
    return ".yaml", yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()


def _case(path: str, value: Any, base: dict[str, Any] = BASE) -> tuple[str, bytes]:
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("."))
    return _yaml(set_path(base, keys, value))


def _jcase(path: str, value: Any, base: dict[str, Any] = BASE) -> tuple[str, bytes]:
    """As :func:`_case`, written as JSON: YAML reads NEL (U+0085) and U+2028/2029 as line breaks, and folds them."""
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("."))
    return ".json", json.dumps(set_path(base, keys, value), default=str).encode()


def _text(text: str, suffix: str = ".yaml") -> tuple[str, bytes]:
    return suffix, text.encode()


def _fact(fact_id: str, value: Any, **extra: Any) -> tuple[str, bytes]:
    data = copy.deepcopy(BASE)
    data["facts"][fact_id] = {"value": value, **extra}
    return _yaml(data)


def _raw_fact(value: str) -> tuple[str, bytes]:
    """A fact whose value is written as YAML text (so that `.nan` stays what YAML makes of it)."""
    text = CHORDOMA.read_text().replace(
        "  tumor_histology:\n", f"  worst_pain_score:\n    value: {value}\n  tumor_histology:\n"
    )
    return _text(text)


def _json_fact(literal: str) -> tuple[str, bytes]:
    """The example as JSON with the fact worst_pain_score written as ``literal`` (NaN, 1e999, ...)."""
    text = json.dumps(BASE, default=str)
    return ".json", text.replace(
        '"tumor_histology": {', f'"worst_pain_score": {{"value": {literal}}}, "tumor_histology": {{'
    ).encode()


def _fhir(rtype: str, path: tuple[Any, ...], value: Any, rename: str = "") -> tuple[str, bytes]:
    """The FHIR example with one element of the first resource of ``rtype`` set (and renamed)."""
    bundle = copy.deepcopy(FHIR)
    node = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if rename:
        node[rename] = node.pop(path[-1])
    return ".json", json.dumps(bundle, ensure_ascii=False).encode()


def _fhir_top(path: tuple[Any, ...], value: Any) -> tuple[str, bytes]:
    return ".json", json.dumps(set_path(FHIR, path, value)).encode()


def _appeal_bundle() -> dict[str, Any]:
    from lettergen import api
    from lettergen.outputs.fhir_out import case_bundle

    data: dict[str, Any] = json.loads(
        json.dumps(case_bundle(api.load_case(EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml").case))
    )
    return data


def _claim_response(mutate: Callable[[dict[str, Any]], Any]) -> tuple[str, bytes]:
    bundle = _appeal_bundle()
    mutate(next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClaimResponse"))
    return ".json", json.dumps(bundle).encode()


def _yaml_bundle_with_int_key() -> tuple[str, bytes]:
    bundle = copy.deepcopy(FHIR)
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    obs[7] = "x"  # a YAML mapping may have an integer key; JSON cannot
    return ".yaml", yaml.safe_dump(bundle).encode()


SEXAGESIMAL = "x: 1" + ":0" * ((1 << 20) // 2 - 3) + "\n"  # 1 MB, 30 s to convert before

SHAPES: list[Row] = [
    # YAML tags whose value does not fit them: AttributeError, KeyError, IndexError before
    ("yaml-timestamp-tag", _text("x: !!timestamp nope\n"), "does not fit its !! tag"),
    (
        "yaml-timestamp-tag-in-case",
        _text(CHORDOMA.read_text().replace("date: 2026-11-21}", "date: !!timestamp nope}")),
        "does not fit its !! tag",
    ),
    ("yaml-bool-tag", _text("x: !!bool maybe\n"), "does not fit its !! tag"),
    ("yaml-empty-int-tag", _text('x: !!int ""\n'), "does not fit its !! tag"),
    ("yaml-sign-int-tag", _text("x: !!int +\n"), "does not fit its !! tag"),
    ("yaml-empty-float-tag", _text('x: !!float ""\n'), "does not fit its !! tag"),
    # numbers too long to be one: 30 s of work, or "not valid YAML" for a JSON file
    ("yaml-sexagesimal-1mb", _text(SEXAGESIMAL), "holds a number longer than 100 characters (line 1)"),
    ("yaml-sexagesimal-int-tag", _text("x: !!int 1" + ":0" * 5000 + "\n"), "holds a number longer than 100"),
    ("yaml-4000-digits", _raw_fact("1" * 4000), "holds a number longer than 100 characters (line"),
    ("json-5000-digits", _text('{"case_id": ' + "1" * 5000 + "}", ".json"), "holds a number longer than 100"),
    ("json-long-float", _text('{"case_id": 0.' + "1" * 5000 + "}", ".json"), "holds a number longer than 100"),
    ("json-nan", _json_fact("NaN"), "is not valid JSON (NaN is not a JSON number)"),
    ("json-infinity", _json_fact("-Infinity"), "is not valid JSON (-Infinity is not a JSON number)"),
    # FHIR elements of the wrong JSON type: crashes before
    (
        "fhir-specialty-coding-int",
        _fhir("PractitionerRole", ("specialty",), [{"coding": 5}]),
        "Bundle.entry[5] (PractitionerRole).specialty[0].coding: must be a list",
    ),
    (
        "fhir-class-type-string",
        _fhir("Coverage", ("class",), [{"type": "group"}]),
        "Bundle.entry[2] (Coverage).class[0].type: must be an object",
    ),
    (
        "fhir-class-type-coding-int",
        _fhir("Coverage", ("class",), [{"type": {"coding": 7}}]),
        "Bundle.entry[2] (Coverage).class[0].type.coding: must be a list",
    ),
    (
        "fhir-class-type-coding-item-int",
        _fhir("Coverage", ("class",), [{"type": {"coding": [7]}}]),
        "(Coverage).class[0].type.coding[0]: must be an object",
    ),
    (
        "fhir-value-datetime-null",
        _fhir("Observation", ("valueBoolean",), None, rename="valueDateTime"),
        "(Observation).valueDateTime: is required",
    ),
    ("fhir-yaml-integer-key", _yaml_bundle_with_int_key(), "(Observation): has a key that is not a string"),
    (
        "fhir-denial-extension-url-list",
        _claim_response(lambda cr: cr["extension"][0]["extension"][0].update(url=["level"])),
        "(ClaimResponse).extension[0].extension[0].url: must be a string",
    ),
    # FHIR elements of the wrong JSON type: accepted, printed as a Python value or silently ignored before
    (
        "fhir-address-line-object",
        _fhir("Practitioner", ("address",), [{"line": [{"a": 1}]}]),
        "Bundle.entry[3] (Practitioner).address[0].line[0]: must be a string",
    ),
    (
        "fhir-specialty-text-int",
        _fhir("PractitionerRole", ("specialty",), [{"text": 5}]),
        "(PractitionerRole).specialty[0].text: must be a string",
    ),
    (
        "fhir-specialty-display-int",
        _fhir("PractitionerRole", ("specialty",), [{"coding": [{"display": 5}]}]),
        "(PractitionerRole).specialty[0].coding[0].display: must be a string",
    ),
    ("fhir-full-url-int", _fhir_top(("entry", 0, "fullUrl"), 5), "Bundle.entry[0].fullUrl: must be a string"),
    ("fhir-resource-id-list", _fhir("Patient", ("id",), ["x"]), "Bundle.entry[0] (Patient).id: must be a string"),
    ("fhir-identifier-value-int", _fhir_top(("identifier", "value"), 5), "Bundle.identifier.value: must be a string"),
    (
        "fhir-npi-system-int",
        _fhir("Practitioner", ("identifier", 0, "system"), 5),
        "(Practitioner).identifier[0].system: must be a string",
    ),
    (
        "fhir-telecom-system-list",
        _fhir("Practitioner", ("telecom", 0, "system"), ["phone"]),
        "(Practitioner).telecom[0].system: must be a string",
    ),
    ("fhir-condition-text-int", _fhir("Condition", ("code", "text"), 5), "(Condition).code.text: must be a string"),
    (
        "fhir-coding-display-object",
        _fhir("Condition", ("code", "coding", 0, "display"), {"a": 1}),
        "(Condition).code.coding[0].display: must be a string",
    ),
    (
        "fhir-body-site-text-int",
        _fhir("ServiceRequest", ("bodySite",), [{"text": 5}]),
        "(ServiceRequest).bodySite[0].text: must be a string",
    ),
    (
        "fhir-extension-url-int",
        _fhir("Coverage", ("extension", 0, "url"), 5),
        "(Coverage).extension[0].url: must be a string",
    ),
    (
        "fhir-coding-system-int",
        _fhir("Observation", ("code", "coding", 0, "system"), 5),
        "(Observation).code.coding[0].system: must be a string",
    ),
    (
        "fhir-adjudication-system-int",
        _claim_response(lambda cr: cr["adjudication"][0]["reason"]["coding"][0].update(system=5)),
        "(ClaimResponse).adjudication[0].reason.coding[0].system: must be a string",
    ),
]

NUMBERS: list[Row] = [
    ("number-nan", _raw_fact(".nan"), "facts.worst_pain_score.value: must be a finite number"),
    ("number-inf", _raw_fact(".inf"), "facts.worst_pain_score.value: must be a finite number"),
    ("number-minus-inf", _raw_fact("-.inf"), "facts.worst_pain_score.value: must be a finite number"),
    ("number-1e999", _raw_fact("1.0e+999"), "facts.worst_pain_score.value: must be a finite number"),
    ("number-minus-1e308", _raw_fact("-1.0e+308"), "facts.worst_pain_score.value: must be a number from 0 to 10"),
    ("number-60-digits", _raw_fact("9" * 60), "facts.worst_pain_score.value: must be a number from 0 to 10 points"),
    ("number-above-range", _fact("worst_pain_score", 11), "facts.worst_pain_score.value: must be a number from 0"),
    ("number-below-range", _fact("worst_pain_score", -0.5), "facts.worst_pain_score.value: must be a number from"),
    (
        "json-number-1e999",
        _json_fact("1e999"),
        "facts.worst_pain_score.value: must be a finite number",
    ),
    (
        "age-over-130",
        _case("patient.birth_date", "1880-01-01"),
        "patient.birth_date: gives an age below 0 or above 130 years",
    ),
    (
        "service-before-birth",
        _case("services.0.date_of_service", "1960-01-01"),
        "services[0].date_of_service: gives an age below 0",
    ),
]

MBI_CASE = set_path(set_path(BASE, ("payer", "plan_type"), "medicare"), ("payer", "state"), None, delete=True)
TEXT: list[Row] = [
    # identifiers: ASCII letters and digits only
    ("npi-fullwidth", _case("provider.npi", "１２３４５６７８９３"), "provider.npi: must be 10 digits"),
    ("npi-arabic-indic", _case("provider.npi", "١٢٣٤٥٦٧٨٩٣"), "provider.npi: must be 10 digits"),
    ("cpt-fullwidth", _case("services.0.code", "２０２０６"), "services[0].code: is not a CPT code"),
    ("cpt-arabic-indic", _case("services.0.code", "٢٠٢٠٦"), "services[0].code: is not a CPT code"),
    ("hcpcs-long-s", _case("services.0.code", "ſ8032"), "services[0].code: is not a CPT code"),
    ("icd-fullwidth-digit", _case("diagnoses.0.code", "C４1.4"), "diagnoses[0].code: is not shaped like"),
    ("member-id-fullwidth", _case("patient.member_id", "ＸＹＺ０００"), "patient.member_id: must be ASCII"),
    ("member-id-arabic-indic", _case("patient.member_id", "XYZ٠٠٠"), "patient.member_id: must be ASCII"),
    ("member-id-newline", _case("patient.member_id", "XYZ\n000"), "patient.member_id: must be ASCII"),
    ("group-number-fullwidth", _case("patient.group_number", "GRP-０01"), "patient.group_number: must be ASCII"),
    (
        "medicare-number-ligature",
        _yaml(set_path(MBI_CASE, ("patient", "medicare_number"), "1ﬀ4TE5MK73")),
        "patient.medicare_number: must be ASCII",
    ),
    ("state-ligature", _case("payer.state", "ﬁ"), "payer.state: must be a two-letter state code in ASCII"),
    ("denial-code-fullwidth", _case("denial.codes", ["CO-５０"], APPEAL), "denial.codes: item 1: is not shaped like"),
    ("birth-date-fullwidth", _case("patient.birth_date", "１９６５-03-14"), "patient.birth_date"),
    ("service-date-arabic-indic", _case("services.0.date_of_service", "٢٠٢٦-11-01"), "services[0].date_of_service"),
    # names and free text: no C0/C1 controls, bidi overrides or isolates, line separators
    ("name-rlo", _jcase("patient.name", "Jane \u202eelpmaS"), "patient.name: contains bidirectional control"),
    ("name-lri", _jcase("provider.name", "A. \u2066Example"), "provider.name: contains bidirectional control"),
    ("name-pdi", _jcase("provider.organization", "Clinic\u2069"), "provider.organization: contains bidirectional"),
    ("name-line-separator", _jcase("provider.name", "A.\u2028Example"), "provider.name: contains a Unicode line"),
    ("name-newline", _jcase("provider.name", "A.\nExample"), "provider.name: must be one line"),
    ("name-tab", _jcase("payer.name", "Example\tPlan"), "payer.name: must be one line"),
    ("address-c1-nel", _jcase("payer.address", "PO Box 0000\x85Springfield"), "payer.address: contains control"),
    ("name-c1-csi", _jcase("provider.name", "A.\x9b31mExample"), "provider.name: contains control characters"),
    (
        "evidence-rlo",
        _jcase("facts.mass_enlarging.evidence", "Enlarging \u202emass"),
        "facts.mass_enlarging.evidence: contains bidirectional control",
    ),
    (
        "evidence-paragraph-separator",
        _jcase("facts.mass_enlarging.evidence", "a\u2029b"),
        "facts.mass_enlarging.evidence: contains a Unicode line or paragraph separator",
    ),
    (
        "evidence-carriage-return",
        _jcase("facts.mass_enlarging.evidence", "a\rb"),
        "facts.mass_enlarging.evidence: contains control characters",
    ),
    (
        "fact-text-c1",
        _jcase("facts.tumor_histology.value", "chordoma\x90"),
        "facts.tumor_histology.value: contains control characters",
    ),
    (
        "denial-reason-lre",
        _jcase("denial.reason", "Not \u202amedically necessary", APPEAL),
        "denial.reason: contains bidirectional control",
    ),
    ("enclosure-c1", _jcase("enclosures.0", "CT report\x9d"), "enclosures[0]: contains control characters"),
]

LOWER_ID = MEMBER_ID.lower()
LEAKS: list[Row] = [
    # a member id where a code, a policy set or a fact id belongs: described, never echoed
    (
        "member-id-in-denial-codes",
        _case("denial.codes", [MEMBER_ID], APPEAL),
        "denial.codes: item 1: is not shaped like a CARC",
    ),
    ("member-id-in-service-code", _case("services.0.code", MEMBER_ID), "services[0].code: is not a CPT code"),
    ("member-id-in-diagnosis-code", _case("diagnoses.0.code", MEMBER_ID), "diagnoses[0].code: is not shaped like"),
    ("member-id-in-policy", _case("payer.policy", LOWER_ID), "payer.policy: is not a payer policy set on file"),
    ("member-id-in-policy-upper", _case("payer.policy", MEMBER_ID), "payer.policy"),
    ("member-id-as-fact-id", _fact(MEMBER_ID, True), "facts (entry 7): unknown fact id"),
    ("member-id-as-fact-id-lower", _fact(LOWER_ID, True), "facts (entry 7): unknown fact id"),
    ("member-id-as-fact-id-bad-value", _fact(LOWER_ID, [1]), "facts (entry 7).value: must be true or false, a num"),
    ("member-id-as-fact-unit", _fact("worst_pain_score", 5, unit=LOWER_ID), "the unit cannot be converted to"),
    ("member-id-as-unknown-key", _case(f"patient.{MEMBER_ID}", 1), "patient: has an unknown key"),
    (
        "member-id-as-fhir-fact-id",
        _fhir("Observation", ("code", "coding", 0, "code"), LOWER_ID),
        "facts (entry 1): unknown fact id",
    ),
]


def _fhir_duplicate_fact() -> tuple[str, bytes]:
    bundle = copy.deepcopy(FHIR)
    observations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    for e in observations[:2]:
        e["resource"]["code"]["coding"][0]["code"] = LOWER_ID
    return ".json", json.dumps(bundle).encode()


LEAKS.append(("member-id-as-fhir-fact-id-twice", _fhir_duplicate_fact(), "(Observation).code: gives the fact of"))

ROWS = SHAPES + NUMBERS + TEXT + LEAKS


def _write(tmp_path: Path, name: str, content: tuple[str, bytes]) -> Path:
    suffix, data = content
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    return path


def assert_one_clean_line(path: Path, fragment: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    for args in (["check", str(path)], ["draft", str(path), "-o", str(out_dir)]):
        code, stdout, stderr = run_cli(*args)
        assert code == 2, (args, stdout, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"lettergen: {path}: "), stderr
        assert fragment in lines[0], lines[0]
        assert "Traceback" not in stdout + stderr
        assert not [i for i in [*IDENTIFIERS, LOWER_ID] if i in stderr], stderr
        assert "{'" not in stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_rows_are_distinct() -> None:
    assert len({r[0] for r in ROWS}) == len(ROWS)
    assert len({r[1] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("name", "content", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_row(tmp_path: Path, name: str, content: tuple[str, bytes], fragment: str) -> None:
    assert_one_clean_line(_write(tmp_path, name, content), fragment, tmp_path)


def test_multi_line_text_keeps_tab_and_newline(tmp_path: Path) -> None:
    data = set_path(BASE, ("facts", "mass_enlarging", "evidence"), "Enlarging mass.\n\tCT 2026-10-28: larger.")
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, stderr = run_cli("check", str(path))
    assert code == 0, stderr


def test_a_number_in_range_and_an_identifier_with_separators_pass(tmp_path: Path) -> None:
    data = set_path(BASE, ("facts", "worst_pain_score"), {"value": 7, "unit": "points"})
    data = set_path(data, ("patient", "group_number"), "GRP-000/1.2 A")
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, stderr = run_cli("check", str(path))
    assert code == 0, stderr


def test_batch_report_carries_no_member_id(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    paths = [_write(cases, name, content) for name, content, _ in LEAKS]
    out = tmp_path / "out"
    code, _, stderr = run_cli("batch", *map(str, paths), "-o", str(out), "--jobs", "1")
    assert code == 2, stderr
    report = (out / "batch-report.csv").read_text() + (out / "batch-report.json").read_text() + stderr
    assert MEMBER_ID not in report and LOWER_ID not in report
    rows = list(csv.DictReader((out / "batch-report.csv").open()))
    assert len(rows) == len(LEAKS) and {r["status"] for r in rows} == {"failed"}


# -- files: run as a separate process, bounded in time and memory, so that the old behaviour fails and does not
# hang the suite or take the machine's memory --------------------------------------------------------------------


def _run_bounded(path: Path, timeout: float = 60) -> tuple[int, str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "lettergen", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        env=env,
        check=False,
    )
    return proc.returncode, proc.stderr


@pytest.fixture
def unblock_fifo() -> Iterator[Callable[[Path], None]]:
    """Opens a FIFO for writing after 20 s, so that a reader that blocked on it (the old behaviour) gets an
    empty file and fails the test instead of hanging it."""
    timers: list[threading.Timer] = []

    def arm(fifo: Path) -> None:
        def release() -> None:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass

        timer = threading.Timer(20, release)
        timer.daemon = True
        timer.start()
        timers.append(timer)

    yield arm
    for t in timers:
        t.cancel()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_at_once(tmp_path: Path, unblock_fifo: Callable[[Path], None]) -> None:
    fifo = tmp_path / "case.yaml"
    os.mkfifo(fifo)
    unblock_fifo(fifo)
    code, _, stderr = run_cli("check", str(fifo))
    assert code == 2 and stderr.strip() == f"lettergen: {fifo}: is a FIFO, not a regular file", stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path, unblock_fifo: Callable[[Path], None]) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    unblock_fifo(fifo)
    link = tmp_path / "case.yaml"
    link.symlink_to(fifo)
    code, _, stderr = run_cli("check", str(link))
    assert code == 2 and stderr.strip() == f"lettergen: {link}: is a FIFO, not a regular file", stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "case.yaml"
    link.symlink_to("/dev/zero")
    code, stderr = _run_bounded(link)
    assert code == 2 and stderr.strip() == f"lettergen: {link}: is a device, not a regular file", stderr


def test_a_symlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "case.yaml"
    link.symlink_to(tmp_path)
    code, _, stderr = run_cli("check", str(link))
    assert code == 2 and stderr.strip() == f"lettergen: {link}: is a directory, not a file", stderr


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    link = tmp_path / "case.yaml"
    link.symlink_to(CHORDOMA)
    code, _, stderr = run_cli("check", str(link))
    assert code == 0, stderr


def test_the_size_cap_holds_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lettergen import yamlio

    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (6 << 20) + b"\n")
    code, _, stderr = run_cli("check", str(big))
    assert code == 2 and stderr.strip() == f"lettergen: {big}: is larger than 5 MB", stderr
    # A file whose size the kernel does not know (as in /proc) is still read no further than the cap and a byte.
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(yamlio.os, "read", counting_read)
    with pytest.raises(CaseError, match="larger than 5 MB"):
        yamlio.read_bytes(big, CaseError)
    assert sum(reads) <= yamlio.MAX_BYTES + 1


def test_a_file_name_with_a_newline_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname.yaml"
    path.write_text("case_id: [unclosed\n")
    code, _, stderr = run_cli("check", str(path))
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"lettergen: {tmp_path}/bad\\nname.yaml: is not valid YAML"), stderr
    missing = tmp_path / "gone\r\n.yaml"
    code, _, stderr = run_cli("check", str(missing))
    assert code == 2 and stderr.strip() == f"lettergen: {tmp_path}/gone\\r\\n.yaml: file not found", stderr


# -- numeric questions declare their range ----------------------------------------------------------------------


def test_every_number_question_declares_its_range() -> None:
    from lettergen.knowledge.store import load_kb

    numbers = [q for q in load_kb().questions.values() if q.type == "number"]
    assert numbers and all(q.min is not None and q.max is not None and q.min <= q.max for q in numbers)
    assert {(q.id, q.min, q.max) for q in numbers} >= {("worst_pain_score", 0, 10), ("age", 0, 130)}


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ({"type": "number", "unit": "points"}, "declares its range"),
        ({"type": "number", "min": 10, "max": 0}, "min is greater than max"),
        ({"type": "bool", "min": 0, "max": 1}, "only number questions carry a range"),
        ({"type": "number", "min": 0, "max": ".inf"}, "max"),
        ({"type": "number", "min": 0, "max": 10, "maximum": 10}, "unknown key"),
    ],
)
def test_a_question_range_is_checked_at_load(tmp_path: Path, question: dict[str, Any], problem: str) -> None:
    from lettergen.errors import DataError
    from lettergen.knowledge.store import load_kb

    root = tmp_path / "kb"
    (root / "criteria").mkdir(parents=True)
    os.symlink(ROOT / "citations", root / "citations")
    src = (ROOT / "criteria" / "bone-ablation-rfa.yaml").read_text()
    line = next(x for x in src.splitlines() if "id: worst_pain_score, prompt" in x)
    fields = ", ".join(f"{k}: {v}" for k, v in question.items())
    (root / "criteria" / "bone-ablation-rfa.yaml").write_text(
        src.replace(line, f'  - {{id: worst_pain_score, prompt: "Worst pain score", {fields}}}')
    )
    with pytest.raises(DataError) as err:
        load_kb(root)
    assert "bone-ablation-rfa.yaml" in str(err.value) and "questions" in str(err.value) and problem in str(err.value)


def test_init_states_the_range() -> None:
    code, out, _ = run_cli("init", "--code", "20982")
    assert code == 0 and "(type number, unit points: a number from 0 to 10 points)" in out
    code, out, _ = run_cli("init", "--code", "20982", "--format", "fhir")
    item = next(i for i in json.loads(out)["item"] if i["linkId"] == "worst_pain_score")
    bounds = {e["url"].rsplit("/", 1)[1]: e["valueDecimal"] for e in item["extension"] if "valueDecimal" in e}
    assert code == 0 and bounds == {"minValue": 0, "maxValue": 10}


def test_a_threshold_outside_the_range_fails_the_knowledge_base(tmp_path: Path) -> None:
    from lettergen.errors import DataError
    from lettergen.knowledge.store import load_kb

    root = tmp_path / "kb"
    (root / "criteria").mkdir(parents=True)
    os.symlink(ROOT / "citations", root / "citations")
    src = (ROOT / "criteria" / "bone-ablation-rfa.yaml").read_text()
    assert "{fact: worst_pain_score, ge: 4, unit: points}" in src
    (root / "criteria" / "bone-ablation-rfa.yaml").write_text(
        src.replace("{fact: worst_pain_score, ge: 4, unit: points}", "{fact: worst_pain_score, ge: 40, unit: points}")
    )
    with pytest.raises(DataError, match="outside its range"):
        load_kb(root)


# -- FHIR resources of wrong shapes --------------------------------------------------------------------------------


def _bundles() -> list[dict[str, Any]]:
    from lettergen import api
    from lettergen.outputs.fhir_out import case_bundle

    out = [FHIR]
    for name in ("appeal-erisa-chordoma-biopsy.yaml", "appeal-medicare-redetermination-sacral-biopsy.yaml",
                 "ablation-rfa-bone-metastasis.yaml"):  # fmt: skip
        out.append(json.loads(json.dumps(case_bundle(api.load_case(EXAMPLES / name).case))))
    return out


BUNDLES = _bundles()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if prefix:
        yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


# Every element below the top level (a Bundle whose own resourceType is replaced is no Bundle: a case mapping).
PATHS = [[p for p, _ in _paths(b) if p != ("resourceType",)] for b in BUNDLES]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "number", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=4))
OF_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "bool": st.booleans(),
    "number": st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False)),
    "string": st.text(max_size=8),
    "array": st.lists(st.one_of(_SCALARS, st.dictionaries(st.text(max_size=6), _SCALARS, max_size=2)), max_size=3),
    "object": st.dictionaries(
        st.sampled_from(["coding", "text", "value", "system", "code", "reference", "line", "url", "a"]),
        st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2)),
        max_size=3,
    ),
}


@st.composite
def wrong_shapes(draw: st.DrawFn) -> dict[str, Any]:
    """An example Bundle in which one to three values are replaced by values of another JSON type."""
    i = draw(st.integers(0, len(BUNDLES) - 1))
    bundle = copy.deepcopy(BUNDLES[i])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[i]))
        try:
            old = bundle
            for k in path:
                old = old[k]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed it
        kind = draw(st.sampled_from(sorted(t for t in OF_TYPE if t != _json_type(old))))
        bundle = set_path(bundle, path, draw(OF_TYPE[kind]))
    return bundle


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wrong_shapes())
def test_wrong_shapes_raise_only_case_errors_naming_the_bundle(bundle: dict[str, Any]) -> None:
    from lettergen.case.load import case_from_data
    from lettergen.decision.engine import check_facts
    from lettergen.knowledge.store import load_kb

    try:
        case = case_from_data(bundle, "b.json")
    except LettergenError as exc:
        assert isinstance(exc, CaseError) and exc.field.startswith("Bundle"), exc
        assert "\n" not in str(exc) and str(exc).startswith("b.json: Bundle"), exc
        return
    try:
        check_facts(case, load_kb(), "b.json")  # a value of the right type may still be a wrong one
    except LettergenError as exc:
        assert isinstance(exc, CaseError) and "\n" not in str(exc), exc
    # accepted: no value of the wrong type reached the case as Python's text for it
    given = " ".join(v for _, v in _paths(bundle) if isinstance(v, str))
    text = case.model_dump_json()
    for python in ("{'", "['", "None", "True", "False"):
        assert python not in text or python in given, text
