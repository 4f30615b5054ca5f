"""Listings, cards, skeletons: each with --json where it lists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, run_cli

from lettergen.case import model as case_model

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
    assert [(s["code"], s["units"]) for s in yaml.safe_load(text)["services"]] == [("20206", 1), ("38505", 1)]


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


# -- CLI conventions (issue 22, point 4) ----------------------------------------------------------------

ERISA = ROOT / "examples" / "appeal-erisa-chordoma-biopsy.yaml"
CHORDOMA = ROOT / "examples" / "chordoma-gluteal-mass.yaml"


def _command_paths() -> list[tuple[str, ...]]:
    from lettergen.interfaces.cli import app
    from lettergen.interfaces.startup import _name

    paths: list[tuple[str, ...]] = [()]
    paths += [(_name(c),) for c in app.registered_commands]
    for group in app.registered_groups:
        assert group.name and group.typer_instance
        paths.append((group.name,))
        paths += [(group.name, _name(c)) for c in group.typer_instance.registered_commands]
    return paths


COMMAND_PATHS = _command_paths()


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=[" ".join(p) or "lettergen" for p in COMMAND_PATHS])
def test_help_fits_80_columns_and_shows_no_type_beside_a_flag(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) > 3 and all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert "\u2026" not in out  # nothing cut short with an ellipsis
    assert "<bool>" not in out
    usage = next(line for line in lines if "Usage:" in line)
    assert "{" not in usage and "}" not in usage
    assert run_cli(*path, "-h") == (code, out, err)


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        ("draft", "--type", ("lmn", "appeal", "external_review", "peer_to_peer", "determination")),
        ("draft", "--format", ("md", "txt", "html", "pdf", "docx", "fhir")),
        ("draft", "--voice", ("physician", "patient")),
        ("batch", "--type", ("lmn", "appeal", "external_review", "peer_to_peer", "determination")),
        ("batch", "--format", ("md", "txt", "html", "pdf", "docx", "fhir")),
        ("init", "--format", ("yaml", "fhir")),
    ],
)
def test_help_lists_the_choices_and_the_parser_refuses_others(
    command: str, option: str, values: tuple[str, ...]
) -> None:
    _, out, _ = run_cli(command, "--help")
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if f" {option} " in line)
    column = lines[first].index("[", lines[first].index(option))
    listed = ""
    for line in lines[first:]:  # the bracketed list, over as many lines of its column as it takes
        listed += line[column:].split("  ")[0].strip()
        if listed.endswith("]"):
            break
    assert listed == "[" + "|".join(values) + "]"
    args = {"draft": [str(CHORDOMA)], "batch": [str(CHORDOMA), "-o", "out"], "init": ["--code", "20206"]}[command]
    code, _, _ = run_cli(command, *args, option, "not-a-choice")
    assert code == 2


def test_the_choices_are_lettergens_own() -> None:
    from typing import get_args

    from lettergen import api
    from lettergen.interfaces import cli
    from lettergen.letter.render import LETTER_TYPES

    assert get_args(cli.LetterTypeName) == LETTER_TYPES
    assert get_args(cli.FormatName) == tuple(api.EXTENSIONS)


def test_version_and_short_help() -> None:
    import lettergen

    code, out, _ = run_cli("--version")
    assert code == 0 and out.split() == ["lettergen", lettergen.__version__]
    assert run_cli("-h") == run_cli("--help")
    assert run_cli("-h")[0] == 0


COMPLETIONS = [
    ("lettergen dr", "draft"),
    ("lettergen draft case.yaml --type ap", "appeal"),
    ("lettergen draft case.yaml --format do", "docx"),
    ("lettergen draft case.yaml --voice pa", "patient"),
    ("lettergen citations ch", "check"),
]


@pytest.mark.parametrize(("words", "expected"), COMPLETIONS, ids=[c[0] for c in COMPLETIONS])
def test_shell_completion_goes_through_the_entry_point(words: str, expected: str) -> None:
    # As the installed script runs: main(), which builds the app through startup.app_for.
    import os

    cword = len(words.split()) - 1  # the word being completed
    env = {**os.environ, "_LETTERGEN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    script = "import sys; sys.argv[0] = 'lettergen'; from lettergen.interfaces.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout.split()


def test_show_completion_prints_a_script() -> None:
    import os

    env = {**os.environ, "SHELL": "/bin/bash"}
    script = "import sys; sys.argv[0] = 'lettergen'; from lettergen.interfaces.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", script, "--show-completion"], capture_output=True, text=True,
                          cwd=ROOT, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0 and "_LETTERGEN_COMPLETE" in proc.stdout


DRAFT_JSON_KEYS = {"case_id", "letter_type", "format", "letter", "ledger", "notes", "verdicts", "validation", "polish",
                   "replaced_ledger_of"}  # fmt: skip
BATCH_JSON_KEYS = {"total", "ok", "skipped", "failed", "verdicts", "failures", "more_failures", "reports", "exit_code"}


def test_draft_json(tmp_path: Path) -> None:
    code, out, err = run_cli("draft", str(CHORDOMA), "-o", str(tmp_path), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert set(got) == DRAFT_JSON_KEYS
    assert got["verdicts"] == {"20206": "met", "38505": "insufficient"}
    assert got["validation"]["ok"] is True and isinstance(got["validation"]["issues"], list)
    assert got["polish"] == "not requested" and got["replaced_ledger_of"] is None
    for key in ("letter", "ledger", "notes"):
        assert Path(got[key]).is_file()


def test_batch_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("case_id: x\n")
    code, out, _ = run_cli("batch", str(CHORDOMA), str(bad), "-o", str(tmp_path / "out"), "--json")
    got = json.loads(out)
    assert code == 2 and set(got) == BATCH_JSON_KEYS
    assert (got["total"], got["ok"], got["failed"], got["exit_code"]) == (2, 1, 1, 2)
    assert got["failures"][0]["file"] == str(bad) and all(Path(p).is_file() for p in got["reports"])
    assert {"code": "20206", "verdict": "met", "cases": 1} in got["verdicts"]


VOICES = [
    (CHORDOMA, "lmn", 2),
    (CHORDOMA, "determination", 2),
    (ERISA, "peer_to_peer", 2),
    (ERISA, "appeal", 0),
    (ERISA, "external_review", 0),
]


@pytest.mark.parametrize(("case", "letter_type", "code"), VOICES, ids=[f"{v[1]}-{v[2]}" for v in VOICES])
def test_patient_voice_only_where_a_letter_has_one(case: Path, letter_type: str, code: int, tmp_path: Path) -> None:
    got, _, err = run_cli("draft", str(case), "--type", letter_type, "--voice", "patient", "-o", str(tmp_path))
    assert got == code, err
    if code:
        assert err.count("lettergen:") == 1 and "--voice" in err and not list(tmp_path.iterdir())


def test_the_patient_voice_types_are_the_templates_that_read_voice() -> None:
    from lettergen.letter.appeals import PATIENT_VOICE_TYPES

    readers = {
        p.stem for p in (ROOT / "templates").glob("*.j2") if not p.name.startswith("_") and "voice" in p.read_text()
    }
    assert readers == set(PATIENT_VOICE_TYPES)


# -- lettergen init (issue 22, point 5) -----------------------------------------------------------------

_FIELD = re.compile(r"(?P<indent> *)(?P<dash>- )?(?P<key>[a-z_]+):(?P<value>[^#]*?)(?P<comment> *#.*)?\Z")
_FACT = re.compile(r"  # (?P<id>[a-z][a-z0-9_]*):\Z")
_FACT_PART = re.compile(r"  #   (?P<part>value|evidence|source|date):\Z")


def _scalar(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else json.dumps(value)


def fill_in(skeleton: str, case: dict[str, Any]) -> str:
    """The skeleton with its placeholders replaced by the values of ``case``, as a person would fill it in: every
    empty field the case has a value for, and the fact blocks of the case's facts uncommented."""
    out: list[str] = []
    section: str | None = None
    item = -1
    fact: str | None = None
    for line in skeleton.splitlines():
        if section == "facts" and (m := _FACT.match(line)):
            fact = m["id"] if m["id"] in case["facts"] else None
            out.append(f"  {fact}:" if fact else line)
            continue
        if section == "facts" and fact and (m := _FACT_PART.match(line)):
            value = case["facts"][fact].get(m["part"])
            out.append(f"    {m['part']}: {_scalar(value)}" if value is not None else line)
            continue
        m = _FIELD.match(line)
        if m is None:
            out.append(line)
            continue
        if not m["indent"]:
            section, item = m["key"], -1
        if m["dash"]:
            item += 1
        node = case.get(section) if m["indent"] else None
        if isinstance(node, list):
            node = node[item] if 0 <= item < len(node) else None
        value = node.get(m["key"]) if isinstance(node, dict) and not m["value"].strip() else None
        if value is None or isinstance(value, dict | list):
            out.append(line)
        else:
            out.append(f"{m['indent']}{m['dash'] or ''}{m['key']}: {_scalar(value)}{m['comment'] or ''}")
    return "\n".join(out) + "\n"


FILLED = [
    (CHORDOMA, ["--code", "20206", "--code", "38505"], "lmn"),
    (ERISA, ["--code", "20206", "--code", "38505", "--appeal"], "appeal"),
]


@pytest.mark.parametrize(("example", "args", "letter_type"), FILLED, ids=[f[2] for f in FILLED])
def test_a_filled_in_skeleton_checks_and_drafts(
    example: Path, args: list[str], letter_type: str, tmp_path: Path
) -> None:
    code, skeleton, err = run_cli("init", *args)
    assert code == 0, err
    case = yaml.safe_load(example.read_text())
    filled = fill_in(skeleton, case)
    assert filled.count("\n") == skeleton.count("\n")  # filled in, nothing added or taken away
    path = tmp_path / "case.yaml"
    path.write_text(filled)
    code, out, err = run_cli("check", str(path), "--json")
    assert code == 0, err
    expected = json.loads(run_cli("check", str(example), "--json")[1])
    assert [(s["code"], s["verdict"]) for s in json.loads(out)["services"]] == [
        (s["code"], s["verdict"]) for s in expected["services"]
    ]
    code, out, err = run_cli("draft", str(path), "-o", str(tmp_path / "out"), "--json")
    assert code == 0, err
    assert json.loads(out)["letter_type"] == letter_type and Path(json.loads(out)["letter"]).is_file()


@pytest.mark.parametrize("appeal", [False, True], ids=["lmn", "appeal"])
def test_an_unfilled_skeleton_is_valid_yaml_with_every_required_field_reported(appeal: bool, tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    assert run_cli("init", "--code", "20206", *(["--appeal"] if appeal else []), "-o", str(path))[0] == 0
    data = yaml.safe_load(path.read_text())
    assert data["patient"]["name"] is None and data["facts"] is None  # placeholders are comments, not values
    code, _, err = run_cli("check", str(path))
    required = ["patient.name", "patient.birth_date", "payer.name", "payer.plan_type", "provider.name", "provider.npi",
                "diagnoses[0].code"]  # fmt: skip
    required += ["denial.date", "denial.reference", "denial.reason"] if appeal else []
    assert code == 2
    assert err.splitlines() == [f"lettergen: {path}: {field}: is empty; fill it in" for field in required]


ENUMS = [
    ("letter", "type", case_model.LetterSpec),
    ("letter", "date_style", case_model.LetterSpec),
    ("patient", "sex", case_model.Patient),
    ("payer", "plan_type", case_model.Payer),
    ("services", "laterality", case_model.Service),
    ("denial", "category", case_model.Denial),
]


def _literal(annotation: Any) -> tuple[str, ...]:
    from typing import Literal, get_args, get_origin

    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return next((found for a in get_args(annotation) if (found := _literal(a))), ())


@pytest.mark.parametrize(("section", "field", "model"), ENUMS, ids=[f"{e[0]}.{e[1]}" for e in ENUMS])
def test_the_skeleton_lists_every_allowed_value(section: str, field: str, model: Any) -> None:
    _, text, _ = run_cli("init", "--code", "20206", "--appeal")
    values = _literal(model.model_fields[field].annotation)
    lines = text[text.index(f"\n{section}:") :].splitlines()
    line = next(x for x in lines if re.match(rf" +(- )?{field}:", x))
    assert len(values) >= 2 and all(re.search(rf"\b{v}\b", line.split("#", 1)[1]) for v in values), line


def test_the_appeal_skeleton_lists_the_denial_codes_and_shows_the_optional_fields() -> None:
    _, text, _ = run_cli("init", "--code", "20206", "--appeal")
    table = yaml.safe_load((ROOT / "lettergen" / "case" / "denial_codes.yaml").read_text())
    denial = text[text.index("\ndenial:") : text.index("\nfacts:")]
    for code in [*table["carc"], *table["rarc"], *table["groups"]]:
        assert re.search(rf"#.*\b{code}\b", denial), code
    data = yaml.safe_load(text)
    assert data["letter"]["type"] == "appeal" and data["denial"]["codes"] == []
    assert {"fax", "address", "policy", "state"} <= set(data["payer"])
    assert {"group_number", "member_id", "medicare_number"} <= set(data["patient"])
    assert "fax" in data["provider"]
    assert "denial:" not in run_cli("init", "--code", "20206")[1]


def test_each_question_is_a_block_with_its_type_and_range() -> None:
    from lettergen.knowledge.store import load_kb

    _, text, _ = run_cli("init", "--code", "20982")
    kb = load_kb()
    for q in kb.policy_for("20982").questions:  # type: ignore[union-attr]
        block = text[text.index(f"  # {q.id}:\n") - 300 : text.index(f"  # {q.id}:\n")]
        assert f"type {q.type}" in block, q.id
        if q.type == "number":
            assert q.range_text() in block and f"unit {q.unit}" in block


def test_every_skeleton_has_its_own_case_id() -> None:
    ids = [yaml.safe_load(run_cli("init", "--code", "20206")[1])["case_id"] for _ in range(2)]
    assert ids[0] != ids[1]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}-[a-z0-9]{6}", i) for i in ids), ids
    assert yaml.safe_load(run_cli("init", "--code", "20206", "--case-id", "clinic-7.a")[1])["case_id"] == "clinic-7.a"
    code, _, err = run_cli("init", "--code", "20206", "--case-id", "no spaces/here")
    assert code == 2 and "no spaces" not in err


def test_payer_overlays_are_named_and_chosen() -> None:
    _, text, _ = run_cli("init", "--code", "20982")
    assert re.search(r"  policy: +#.*bcbsal-mp-119", text)
    _, text, _ = run_cli("init", "--code", "20982", "--payer-policy", "bcbsal-mp-119")
    assert yaml.safe_load(text)["payer"]["policy"] == "bcbsal-mp-119"
    for bad in ("no-such-set", "aetna-cpb-0270"):  # unknown, or on file but not for this code
        code, _, err = run_cli("init", "--code", "20982", "--payer-policy", bad)
        assert code == 2 and bad not in err


def test_init_csv_writes_the_header_row() -> None:
    import csv as csv_mod

    code, out, _ = run_cli("init", "--code", "20206", "--csv", "--appeal")
    assert code == 0 and out.count("\n") == 1
    columns = next(csv_mod.reader([out]))
    assert columns[:2] == ["case_id", "letter.type"] and "denial.reason" in columns and "mass_enlarging" in columns


# -- every problem of a case at once ----------------------------------------------------------------------

MANY = [
    ({"patient": {"birth_date": "2999-01-01"}}, ["patient.birth_date"]),
    (
        {"patient": {"birth_date": "2999-01-01", "sex": "SECRET-SEX"}, "payer": {"plan_type": "SECRET-PLAN"},
         "provider": {"npi": "SECRET-NPI"}},
        ["patient.birth_date", "patient.sex", "payer.plan_type", "provider.npi"],
    ),
    ({"diagnoses": [{"code": "SECRET-DX"}], "services": [{"code": "20206", "units": 0}]},
     ["diagnoses[0].code", "services[0].units"]),
    ({"facts": {"mass_enlarging": {"value": "SECRET-VALUE"}, "imaging_suspicious": {"value": 7}}},
     ["facts.mass_enlarging.value", "facts.imaging_suspicious.value"]),
]  # fmt: skip


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and key != "facts" else value
        if key == "facts":
            out[key] = {**base["facts"], **value}
    return out


@pytest.mark.parametrize(("change", "fields"), MANY, ids=[",".join(m[1]) for m in MANY])
def test_every_problem_of_a_case_is_reported_at_once(change: dict[str, Any], fields: list[str], tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(_merged(yaml.safe_load(CHORDOMA.read_text()), change)))
    code, _, err = run_cli("check", str(path))
    lines = err.splitlines()
    assert code == 2 and sorted(line.split(": ")[2] for line in lines) == sorted(fields), err
    assert all(line.startswith(f"lettergen: {path}: ") for line in lines)
    assert "SECRET" not in err


def test_past_twenty_problems_the_rest_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    data = yaml.safe_load(CHORDOMA.read_text())
    data["facts"].update({f"not_a_fact_{i}": {"value": True} for i in range(25)})
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli("check", str(path))
    lines = err.splitlines()
    assert code == 2 and len(lines) == 21 and lines[-1] == f"lettergen: {path}: and 5 more"
    assert "not_a_fact" not in err  # an unknown fact id may be patient data
