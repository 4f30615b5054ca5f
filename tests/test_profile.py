"""The practice profile (issue 22, point 1): where it is found, how a case overrides it, what it refuses, and
what it leaves in the letter and the ledger."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, EXAMPLES, run_cli

from lettergen import api
from lettergen.case.model import case_from_mapping
from lettergen.case.profile import ENV, TEMPLATE, fill_case, find_profile, load_profile

DATE = "2026-11-21"
DAY = date(2026, 11, 21)
PNG = bytes.fromhex(  # a 1x1 black PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63606060f80f0001040100e0d1a3c40000000049454e44ae426082"
)
SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 4"><path d="M0 3 L5 1 L10 3" stroke="#000"/></svg>'
FULL = """
[practice]
organization = "Profile Clinic"
address = "1 Profile Road, Springfield, ST 00000"
phone = "555-0199"
fax = "555-0198"

[signer]
name = "P. Profile"
credentials = "DO"
specialty = "Profile Medicine"
npi = "1234567893"
"""


def _write(folder: Path, text: str, name: str = "profile.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _case_without_provider(tmp_path: Path, **provider: Any) -> Path:
    data = yaml.safe_load(CHORDOMA.read_text())
    if provider:
        data["provider"] = provider
    else:
        del data["provider"]
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three profiles, one per place lettergen looks, each naming its own organization; no variable set."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(ENV, raising=False)
    return {
        where: _write(tmp_path / where, FULL.replace("Profile Clinic", f"{where.title()} Clinic"))
        for where in ("option", "variable")
    } | {"config": tmp_path / "config" / "lettergen" / "profile.toml"}


# (--profile given, LETTERGEN_PROFILE: "set", "empty" or None, config folder's profile.toml there) -> used
DISCOVERY = [
    (True, "set", True, "option"),
    (False, "set", True, "variable"),
    (False, None, True, "config"),
    (False, None, False, None),
    (False, "empty", True, None),  # LETTERGEN_PROFILE= turns the config folder's profile off
    (True, "empty", True, "option"),
]


@pytest.mark.parametrize(("option", "variable", "config", "used"), DISCOVERY)
def test_discovery_order(
    homes: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: bool,
    variable: str | None,
    config: bool,
    used: str | None,
) -> None:
    if config:
        _write(homes["config"].parent, FULL.replace("Profile Clinic", "Config Clinic"))
    if variable is not None:
        monkeypatch.setenv(ENV, str(homes["variable"]) if variable == "set" else "")
    explicit = homes["option"] if option else None
    assert find_profile(explicit) == (homes[used] if used else None)
    # The command line finds the same one: the case leaves its provider block out, the letterhead says whose.
    case = _case_without_provider(tmp_path, name="A. Example", npi="1234567893")
    args = ["draft", str(case), "--date", DATE, "-o", str(tmp_path / "out")]
    code, out, err = run_cli(*args, *(["--profile", str(explicit)] if explicit else []))
    assert code == 0, err
    letter = Path(out.splitlines()[0].removeprefix("wrote ")).read_text()
    organization = letter.splitlines()[0].rstrip()
    assert organization == (f"{used.title()} Clinic" if used else "A. Example")


# The case's provider block (None: left out) -> the provider the letter is drafted for.
OVERRIDES = [
    (
        None,
        {"name": "P. Profile", "npi": "1234567893", "organization": "Profile Clinic", "fax": "555-0198"},
    ),
    (
        {"name": "A. Example", "npi": "1234567893"},
        {"name": "A. Example", "credentials": "DO", "organization": "Profile Clinic", "phone": "555-0199"},
    ),
    (
        {"name": "A. Example", "npi": "1234567893", "fax": None, "organization": "Case Clinic"},
        {"fax": "555-0198", "organization": "Case Clinic", "specialty": "Profile Medicine"},
    ),
    (
        {
            "name": "C. Case",
            "credentials": "MD",
            "specialty": "Case Surgery",
            "npi": "1234567893",
            "organization": "Case Clinic",
            "address": "9 Case Street",
            "phone": "555-0100",
            "fax": "555-0101",
        },
        {"name": "C. Case", "credentials": "MD", "address": "9 Case Street", "phone": "555-0100", "fax": "555-0101"},
    ),
]


@pytest.mark.parametrize(("provider", "expected"), OVERRIDES)
def test_the_case_overrides_the_profile_field_by_field(
    tmp_path: Path, provider: dict[str, Any] | None, expected: dict[str, str]
) -> None:
    profile = load_profile(_write(tmp_path, FULL))
    case = _case_without_provider(tmp_path, **(provider or {}))
    loaded = api.load_case(case, profile=profile)
    got = loaded.case.provider.model_dump()
    assert {k: got[k] for k in expected} == expected
    # The same merge for a case built without the profile, handed to draft with it.
    if provider is not None:
        plain = api.load_case(case)
        assert fill_case(plain.case, profile).provider == loaded.case.provider
        d = api.draft(plain, letter_date=DAY, profile=profile)
        assert d.case.provider == loaded.case.provider and d.validation.ok


@pytest.mark.parametrize(
    ("case_style", "profile_style", "header_birth_date"),
    [(None, None, "03/14/1965"), (None, "iso", "1965-03-14"), ("us", "iso", "03/14/1965"), ("iso", "us", "1965-03-14")],
)
def test_date_style_comes_from_the_case_else_the_profile(
    tmp_path: Path, case_style: str | None, profile_style: str | None, header_birth_date: str
) -> None:
    data = yaml.safe_load(CHORDOMA.read_text())
    if case_style:
        data["letter"]["date_style"] = case_style
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(data))
    style = f'[letter]\ndate_style = "{profile_style}"\n' if profile_style else ""
    profile = load_profile(_write(tmp_path, style))
    d = api.draft(api.load_case(tmp_path / "case.yaml", profile=profile), letter_date=DAY, profile=profile)
    assert f"**Date of birth:** {header_birth_date}" in d.text


def test_a_fhir_bundle_takes_what_its_practitioner_leaves_out(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, FULL))
    case = api.load_case(EXAMPLES / "chordoma-gluteal-mass.fhir.json", profile=profile).case
    assert case.provider.name == "A. Example"  # the Practitioner's
    assert case.provider.fax == "555-0198"  # the profile's: the Bundle has none


# (profile text, or a setup name; the key the message names; words of the message)
BAD = [
    ('[signer]\nnickname = "Al"\n', "signer.nickname", "unknown key"),
    ('[pratice]\norganization = "X"\n', "pratice", "unknown key"),
    ('logo = "x.png"\n', "logo", "unknown key"),
    ('[signer]\nnpi = "1234567890"\n', "signer.npi", "check digit"),
    ('[signer]\nnpi = "12345"\n', "signer.npi", "10 digits"),
    ("[signer]\nnpi = 1234567890\n", "signer.npi", "check digit"),
    ('[letter]\ndate_style = "eu"\n', "letter.date_style", "'us' or 'iso'"),
    ('[letter]\nreferences = "footnotes"\n', "letter.references", "before-signature"),
    ('[practice]\norganization = "A\\u202eB"\n', "practice.organization", "bidirectional"),
    ('[practice]\nphone = ""\n', "practice.phone", "at least 1 character"),
    ("[practice]\norganization = \n", "", "is not valid TOML"),
    ('[practice]\norganization = "X"\norganization = "Y"\n', "", "is not valid TOML"),
    ('[practice]\nlogo = "missing.png"\n', "practice.logo", "file not found"),
    ('[practice]\nlogo = "notes.txt"\n', "practice.logo", "must be a PNG or SVG image"),
    ('[signer]\nsignature = "script.svg"\n', "signer.signature", "<script> element"),
    ('[signer]\nsignature = "remote.svg"\n', "signer.signature", "links to another file"),
    ("missing file", "", "file not found"),
    ("not UTF-8", "", "is not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD)
def test_bad_profile_is_one_line_naming_the_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "script.svg").write_text(SVG.replace("</svg>", "<script>alert(1)</script></svg>"))
    (tmp_path / "remote.svg").write_text(SVG.replace("<path", '<image href="https://example.org/x.png"/><path'))
    path = tmp_path / "profile.toml"
    if text == "not UTF-8":
        path.write_bytes(b'[practice]\norganization = "\xff"\n')
    elif text != "missing file":
        path.write_text(text)
    for command in (["draft", "-o", str(tmp_path / "out")], ["check"]):
        code, out, err = run_cli(command[0], str(CHORDOMA), "--profile", str(path), *command[1:])
        assert code == 2, (command, err)
        assert out == "" and len(err.strip().splitlines()) == 1, err
        where = f"lettergen: {path}: {key}: " if key else f"lettergen: {path}: "
        assert err.startswith(where) and words in err, err
    assert not (tmp_path / "out").exists()


def test_a_bad_profile_named_by_the_variable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "gone.toml"))
    code, _, err = run_cli("check", str(CHORDOMA))
    assert code == 2 and err.strip() == f"lettergen: {tmp_path / 'gone.toml'}: file not found"


def _with_images(folder: Path) -> Path:
    """FULL with a PNG logo and an SVG signature beside it."""
    (folder / "logo.png").write_bytes(PNG)
    (folder / "sig.svg").write_text(SVG)
    text = FULL.replace('fax = "555-0198"', 'fax = "555-0198"\nlogo = "logo.png"')
    return _write(folder, text.replace('npi = "1234567893"', 'npi = "1234567893"\nsignature = "sig.svg"'))


def test_the_ledger_records_the_profile_and_its_images(tmp_path: Path) -> None:
    path = _with_images(tmp_path)
    code, _, err = run_cli("draft", str(CHORDOMA), "--date", DATE, "--profile", str(path), "-o", str(tmp_path / "a"))
    assert code == 0, err
    ledger = json.loads((tmp_path / "a" / "chordoma-gluteal-001.lmn.ledger.json").read_text())
    assert ledger["data_files"]["profile"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ledger["data_files"]["profile:logo"] == hashlib.sha256(PNG).hexdigest()
    assert ledger["data_files"]["profile:signature"] == hashlib.sha256(SVG.encode()).hexdigest()
    code, _, err = run_cli("draft", str(CHORDOMA), "--date", DATE, "-o", str(tmp_path / "b"))
    ledger = json.loads((tmp_path / "b" / "chordoma-gluteal-001.lmn.ledger.json").read_text())
    assert code == 0 and not any(k.startswith("profile") for k in ledger["data_files"])


def test_a_batch_drafts_again_when_the_profile_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL)
    args = ("batch", str(CHORDOMA), "-o", str(tmp_path / "out"), "--date", DATE, "--profile", str(path))
    statuses = []
    for change in (None, None, "Changed Clinic"):
        if change:
            path.write_text(FULL.replace("Profile Clinic", change))
        code, _, err = run_cli(*args)
        assert code == 0, err
        report = json.loads((tmp_path / "out" / "batch-report.json").read_text())
        statuses.append(report[0]["status"])
    assert statuses == ["ok", "skipped", "ok"]
    # The case's own provider block wins over the profile: the letterhead is the case's organization.
    assert (tmp_path / "out" / "chordoma-gluteal-001.lmn.md").read_text().startswith("Riverside Orthopaedic")


def test_profile_init_writes_a_commented_profile_that_loads(tmp_path: Path) -> None:
    code, out, _ = run_cli("profile", "init")
    assert code == 0 and out == TEMPLATE
    target = tmp_path / "conf" / "lettergen" / "profile.toml"
    code, out, _ = run_cli("profile", "init", "-o", str(target))
    assert code == 0 and target.read_text() == TEMPLATE
    empty = load_profile(target)
    assert empty.provider == {} and empty.logo is None and empty.references == "before-signature"
    code, _, err = run_cli("profile", "init", "-o", str(target))  # never over a profile someone filled in
    assert code == 2 and "already exists" in err
    # Every example value of the template is valid once uncommented (the images aside, which need files).
    filled = re.sub(r"^# (?!logo|signature)(\w+ = )", r"\1", TEMPLATE, flags=re.M)
    profile = load_profile(_write(tmp_path, filled, "filled.toml"))
    assert set(profile.provider) == {
        "organization",
        "address",
        "phone",
        "fax",
        "name",
        "credentials",
        "specialty",
        "npi",
    }
    code, out, _ = run_cli("profile", "show", "--profile", str(tmp_path / "filled.toml"))
    assert code == 0 and "provider.npi = 1234567893" in out


def test_images_are_layout_in_html_and_absent_from_text(tmp_path: Path) -> None:
    profile = load_profile(_with_images(tmp_path))
    case = api.load_case(CHORDOMA, profile=profile)
    html = api.draft(case, fmt="html", letter_date=DAY, profile=profile)
    page = html.content.decode()
    assert '<div class="logo" aria-hidden="true"></div>' in page
    assert '<div class="signature-image" aria-hidden="true"></div>' in page
    head = page.split("</head>")[0]
    assert "data:image/png;base64," in head and "data:image/svg+xml;base64," in head
    assert html.validation.ok
    plain = api.draft(case, fmt="html", letter_date=DAY)
    assert [s.text for s in plain.letter.sentences] == [s.text for s in html.letter.sentences]  # no words added
    for fmt in ("md", "txt"):
        letter = api.draft(case, fmt=fmt, letter_date=DAY, profile=profile).text
        assert "logo" not in letter and "signature-image" not in letter and "data:" not in letter


@pytest.mark.parametrize("voice", ["physician", "patient"])
def test_references_after_the_signature(tmp_path: Path, voice: str) -> None:
    profile = load_profile(_write(tmp_path, '[letter]\nreferences = "after-signature"\n'))
    source = EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml"
    before = api.draft(api.load_case(source), letter_type="appeal", letter_date=DAY, voice=voice)
    after = api.draft(api.load_case(source), letter_type="appeal", letter_date=DAY, voice=voice, profile=profile)
    assert before.text.index("## References") < before.text.index("____")
    assert after.text.index("## References") > after.text.index("NPI 1234567893")
    assert after.text.index("## References") > after.text.index("## Enclosures")
    assert sorted(s.text for s in before.letter.sentences) == sorted(s.text for s in after.letter.sentences)
    assert after.validation.ok


def test_a_case_without_a_provider_needs_a_profile(tmp_path: Path) -> None:
    case = _case_without_provider(tmp_path)
    code, _, err = run_cli("check", str(case))
    assert code == 2 and "provider" in err
    with pytest.raises(Exception, match="provider"):
        case_from_mapping(yaml.safe_load(case.read_text()), "case.yaml")
    code, _, err = run_cli("check", str(case), "--profile", str(_write(tmp_path, FULL)))
    assert code == 0, err
