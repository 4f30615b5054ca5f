"""The guarded polish step through litellm's real HTTP path, against a loopback fake model."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

import lettergen.polish.polisher as polish_module
from lettergen import api
from lettergen.errors import LettergenError
from lettergen.polish.polisher import make_polisher
from lettergen.polish.pool import polish_many
from tests.conftest import CHORDOMA, ROOT, run_cli
from tests.fake_llm import LIARS, FakeLLM

DAY = date(2026, 11, 21)
FAST = {"timeout": 2.0, "attempts": 3, "backoff": 0.01, "backoff_max": 0.02}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    srv = FakeLLM().start()
    yield srv
    srv.stop()


@pytest.fixture
def fake(server: FakeLLM) -> FakeLLM:
    server.reset()
    return server


@pytest.fixture(scope="module")
def identified_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chordoma case with more identifiers filled in: the patient's address and group number."""
    data = yaml.safe_load(CHORDOMA.read_text(encoding="utf-8"))
    data["patient"].update(address="12 Quiet Lane, Springfield, ST 00001", group_number="GRP-77821")
    path = tmp_path_factory.mktemp("case") / "identified.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def polish(fake: FakeLLM, cache: Path, behaviour: str, case: Path = CHORDOMA, ltype: str = "lmn", **kw: Any) -> Any:
    polisher = make_polisher(f"openai/{behaviour}", api_base=fake.url, cache_dir=cache, **{**FAST, **kw})
    return api.draft(api.load_case(case), letter_type=ltype, letter_date=DAY, polish=polisher)


def offline(case: Path = CHORDOMA, ltype: str = "lmn") -> Any:
    return api.draft(api.load_case(case), letter_type=ltype, letter_date=DAY)


def assert_no_identifiers(fake: FakeLLM, case: Path) -> None:
    ids = api.load_case(case).case.identifiers()
    assert fake.bodies
    for body in fake.bodies:
        decoded = json.dumps(json.loads(body), ensure_ascii=False)
        for ident in ids:
            assert ident.lower() not in body.lower() and ident.lower() not in decoded.lower()


@pytest.mark.parametrize("ltype", ["lmn", "determination"])
def test_faithful_paraphraser_is_accepted(fake: FakeLLM, tmp_path: Path, identified_case: Path, ltype: str) -> None:
    d = polish(fake, tmp_path, "faithful", identified_case, ltype)
    rec = d.ledger.polish
    assert (rec.status, rec.calls, rec.fell_back, rec.error) == ("ok", 1, {}, None)
    assert rec.accepted and set(rec.accepted) == set(rec.sent)
    assert d.ledger.prompt == "polish-v1" and rec.prompt and rec.prompt.startswith("polish-v1 ")
    assert rec.tokens_in > 0 and rec.model == "openai/faithful"
    assert d.validation.ok
    origins = {s.id: s.origin for s in d.letter.sentences}
    assert all(origins[sid] == "polished" for sid in rec.accepted)
    assert all(origins[s] == "template" for s in origins if s.startswith(("header.", "signature.", "reference.")))
    assert "usually rests on" in d.text  # a finding's statement, reworded
    if ltype == "lmn":  # the introduction names what is requested: its wording stays the template's
        assert "summary.intro" not in rec.sent and "I am writing on behalf of my patient, Jane Q. Sample," in d.text
    assert_no_identifiers(fake, identified_case)


LIAR_REASONS = {
    "liar-number": "adds number",
    "liar-negation": "negation",
    "liar-drug": "adds the clinical term 'warfarin'",
    "liar-add-sentence": "adds a sentence",
    "liar-drop-token": "drops token",
    "liar-dup-token": "times instead of 1",
    "liar-swap-citation": "token",
    "liar-inject": "adds an assertion of necessity",
}


def _draftable() -> list[Path]:
    """Example cases with a code to request: the others draft no letter (exit 4)."""
    out = []
    for p in sorted((ROOT / "examples").glob("[a-z]*.yaml")):
        if any(s.verdict == "met" for s in api.check(api.load_case(p).case).services):
            out.append(p)
    return out


@pytest.mark.parametrize("liar", sorted(LIARS))
def test_liars_fall_back_to_the_template(fake: FakeLLM, tmp_path: Path, identified_case: Path, liar: str) -> None:
    d = polish(fake, tmp_path, liar, identified_case)
    rec = d.ledger.polish
    assert rec.status == "fell back" and rec.accepted == [], rec.accepted
    # asked once, then again twice with the reasons; the second re-ask repeats the first, so the cache answers it
    assert (rec.calls, rec.cache_hits) == (2, 1)
    assert set(rec.fell_back) == set(rec.sent)
    assert any(LIAR_REASONS[liar] in r for reasons in rec.fell_back.values() for r in reasons)
    assert d.text == offline(identified_case).text
    assert all(s.origin == "fallback" for s in d.letter.sentences if s.id in rec.fell_back)
    retry = json.loads(fake.bodies[1])["messages"][-1]["content"]
    assert "<rejected>" in retry and LIAR_REASONS[liar].split("'")[0].strip() in retry
    assert_no_identifiers(fake, identified_case)


def test_a_sentence_fixed_on_reask_is_accepted(fake: FakeLLM, tmp_path: Path) -> None:
    d = polish(fake, tmp_path, "liar-once")
    assert (d.ledger.polish.status, d.ledger.polish.calls) == ("ok", 2)
    assert "adds number, date or code" in json.loads(fake.bodies[1])["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("behaviour", "options", "status", "calls", "error"),
    [
        ("garbage", {}, "fell back", 2, None),
        ("flaky-429", {}, "ok", 2, None),
        ("error-500", {}, "error", 3, "model unavailable: InternalServerError (HTTP 500) after 3 attempts"),
        ("hang", {"timeout": 0.3, "attempts": 2}, "error", 2, "model unavailable: Timeout (HTTP 408) after 2 attempts"),
    ],
)
def test_model_failures_keep_the_template(
    fake: FakeLLM, tmp_path: Path, behaviour: str, options: dict[str, Any], status: str, calls: int, error: str | None
) -> None:
    d = polish(fake, tmp_path, behaviour, **options)
    rec = d.ledger.polish
    assert (rec.status, rec.calls, rec.error) == (status, calls, error)
    if status != "ok":
        assert d.text == offline().text
        assert all(rec.fell_back[sid] for sid in rec.sent)
    if behaviour == "garbage":
        assert all("not a JSON object" in r[0] for r in rec.fell_back.values())


def test_second_run_is_served_from_the_cache(fake: FakeLLM, tmp_path: Path) -> None:
    first = polish(fake, tmp_path, "liar-once")
    sent = len(fake.bodies)
    second = polish(fake, tmp_path, "liar-once")
    assert len(fake.bodies) == sent  # no model call at all
    assert (second.ledger.polish.calls, second.ledger.polish.cache_hits, second.ledger.polish.cached) == (0, 2, True)
    assert second.text == first.text and second.ledger.sentences == first.ledger.sentences


def test_a_corrupt_cache_entry_is_ignored_and_rewritten(
    fake: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = polish(fake, tmp_path, "faithful")
    (entry,) = list(tmp_path.glob("polish/*/*.json"))
    entry.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lettergen.polish.polisher"):
        again = polish(fake, tmp_path, "faithful")
    assert "ignoring corrupt entry" in caplog.text
    assert again.ledger.polish.calls == 1 and again.text == first.text
    assert json.loads(entry.read_text(encoding="utf-8"))["model"] == "openai/faithful"


def test_cli_draft_with_polish(fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = run_cli(
        "draft", str(CHORDOMA), "--date", "2026-11-21", "-o", str(tmp_path), "--polish",
        "--model", "openai/faithful", "--api-base", fake.url,
    )  # fmt: skip
    assert code == 0, out
    ledger = json.loads((tmp_path / "chordoma-gluteal-001.lmn.ledger.json").read_text(encoding="utf-8"))
    assert ledger["polish"]["status"] == "ok" and ledger["prompt"] == "polish-v1"
    assert list((tmp_path / "cache" / "polish").glob("*/*.json"))


def test_cli_batch_with_polish_then_resume(fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(tmp_path / "cache"))
    cases = [str(p) for p in _draftable()[:4]]
    out = tmp_path / "out"
    args = ["batch", *cases, "-o", str(out), "--date", "2026-11-21", "--polish", "--model", "openai/faithful",
            "--api-base", fake.url, "--concurrency", "3"]  # fmt: skip
    code, stdout, err = run_cli(*args)
    assert code in (0, 2), stdout + err  # 2: an example that is only an appeal input may be refused
    ledgers = sorted(out.glob("*.ledger.json"))
    assert ledgers
    for path in ledgers:
        ledger = json.loads(path.read_text(encoding="utf-8"))
        assert ledger["polish"]["model"] == "openai/faithful" and ledger["polish"]["status"] == "ok"
    assert_no_identifiers(fake, Path(cases[0]))
    # Same model again: everything already drafted is skipped, and nothing is sent to the model.
    fake.reset()
    code, stdout, err = run_cli(*args)
    assert code in (0, 2), stdout + err
    assert fake.bodies == []
    # Offline now: the polished letters do not count as up to date.
    code, stdout, _ = run_cli("batch", *cases, "-o", str(out), "--date", "2026-11-21")
    for path in sorted(out.glob("*.ledger.json")):
        assert json.loads(path.read_text(encoding="utf-8"))["polish"]["model"] is None


def test_polish_without_the_extra_exits_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # import litellm -> ImportError
    code, _, err = run_cli("draft", str(CHORDOMA), "-o", str(tmp_path), "--polish", "--model", "openai/x")
    assert code == 3 and "pip install 'lettergen[llm]'" in err
    assert not list(tmp_path.iterdir())


def test_polish_many_runs_cases_concurrently(fake: FakeLLM, tmp_path: Path) -> None:
    cases = [api.load_case(p) for p in _draftable()[:6]]
    results = polish_many(
        cases, model="openai/faithful", api_base=fake.url, concurrency=3, letter_date=DAY, cache_dir=tmp_path,
        strict=False, **FAST,
    )  # fmt: skip
    assert len(results) == len(cases)
    for case, result in zip(cases, results, strict=True):
        assert not isinstance(result, Exception)
        assert result.case.case_id == case.case.case_id and result.ledger.polish.status == "ok"


@pytest.mark.parametrize(
    ("route", "through_gate"),
    [
        ("openai/faithful", True),  # litellm's OpenAI client: each request waits for a slot on the wire
        ("hosted_vllm/faithful", False),  # a client of its own: each whole call holds a slot instead
    ],
)
def test_concurrency_bounds_requests_in_flight(route: str, through_gate: bool) -> None:
    # Twice as many threads as slots polish these letters; the server counts what reaches it at once (a
    # server of its own: the module's may still be sleeping through an earlier test's "hang").
    cases = [api.load_case(p) for p in _draftable()[:8]]
    fake = FakeLLM().start()
    fake.delay = 0.05
    try:
        pol = make_polisher(route, api_base=fake.url, use_cache=False, **FAST)
        results = polish_many(cases, model="", polisher=pol, concurrency=3, letter_date=DAY, strict=False)
    finally:
        fake.stop()
    drafts = [r for r in results if not isinstance(r, LettergenError)]  # one example refuses its appeal by design
    assert len(drafts) == 7 and all(d.ledger.polish.status == "ok" for d in drafts)
    assert 1 <= fake.peak <= 3
    assert pol._gated_http is through_gate


def test_offline_path_never_imports_litellm(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from lettergen.interfaces.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['draft', {str(CHORDOMA)!r}, '-o', {str(tmp_path)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('litellm' in sys.modules, 'lettergen.polish.polisher' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_cost_is_recorded_when_litellm_knows_the_price(fake: FakeLLM, tmp_path: Path) -> None:
    # The fake answers any unknown behaviour faithfully; litellm prices gpt-4o-mini from its local cost map.
    d = polish(fake, tmp_path, "gpt-4o-mini")
    rec = d.ledger.polish
    import litellm  # already imported by the polisher, with the local cost map

    price = litellm.model_cost["gpt-4o-mini"]
    expected = rec.tokens_in * price["input_cost_per_token"] + rec.tokens_out * price["output_cost_per_token"]
    assert rec.status == "ok" and rec.tokens_in > 0 and rec.tokens_out > 0
    assert rec.cost_usd == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert offline().ledger.polish.cost_usd is None


def test_polish_many_matches_drafting_one_by_one(fake: FakeLLM, tmp_path: Path) -> None:
    # More cases than the rendering thread may hold ahead (two per polishing thread), one of them bad.
    cases: list[Any] = [api.load_case(p) for p in _draftable()[:6]]
    bad = cases[0].case.model_copy(update={"letter": cases[0].case.letter.model_copy(update={"type": "appeal"})})
    cases.insert(2, bad)  # an appeal with no denial on file: an input error, returned in its place
    pol = make_polisher("openai/faithful", api_base=fake.url, use_cache=False, **FAST)
    many = polish_many(cases, model="", polisher=pol, concurrency=1, letter_date=DAY, strict=False)
    for case, got in zip(cases, many, strict=True):
        try:
            want: Any = api.draft(case, letter_date=DAY, polish=pol, strict=False)
        except LettergenError as exc:
            want = exc
        if isinstance(want, LettergenError):
            assert type(got) is type(want) and str(got) == str(want)
        else:
            assert not isinstance(got, LettergenError)
            assert got.content == want.content and got.ledger == want.ledger


# A polished sentence that the whole-letter validator objects to goes back to the template; the verdict the
# safety net hands back (so that finish need not validate again) must be exactly the returned letter's.
@pytest.mark.parametrize(
    ("edit", "reverted"),
    [
        (lambda t: "In short, " + t, False),  # faithful: kept, and the verdict is reused
        (lambda t: t + " Seen again on 2031-02-03.", True),  # a date nothing grounds: rule 2
        (lambda t: "38505 is medically necessary.", True),  # necessity for a code not met: rule 5
    ],
)
def test_the_safety_net_reverts_what_the_validator_rejects(edit: Any, reverted: bool) -> None:
    from lettergen.polish.polisher import _revert_invalid
    from lettergen.validation.rules import validate_letter

    loaded, kb = api.load_case(CHORDOMA), api.load_kb()
    decision = api.check(loaded.case, kb)
    template = offline().letter
    target = next(s for s in template.sentences if s.kind == "claim" and s.facts)
    changed = [replace(s, text=edit(s.text), origin="polished") if s.id == target.id else s for s in template.sentences]
    fell_back: dict[str, list[str]] = {}
    out, verdict = _revert_invalid(
        template, template.model_copy(update={"sentences": changed}), loaded.case, decision, kb, fell_back
    )
    got = out.sentence(target.id)
    if reverted:
        assert (got.text, got.origin) == (target.text, "fallback")
        assert fell_back[target.id] and all(r.startswith("validator rule ") for r in fell_back[target.id])
        assert verdict is None  # the letter changed after validating: finish validates it again
    else:
        assert (got.text, got.origin, fell_back) == (edit(target.text), "polished", {})
        assert verdict == validate_letter(out, loaded.case, decision, kb) and verdict.ok


def test_a_polished_draft_carries_the_validation_of_its_own_letter(fake: FakeLLM, tmp_path: Path) -> None:
    from lettergen.validation.rules import validate_letter

    for behaviour in ("faithful", "liar-number"):
        d = polish(fake, tmp_path / behaviour, behaviour)
        assert d.validation == validate_letter(d.letter, d.case, d.decision, api.load_kb())


def test_the_heap_is_frozen_once_after_the_first_answer(
    fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # litellm's first call imports much of itself; those objects join the frozen heap once, so that a full
    # collection during a run of letters walks only the letters in progress.
    calls: list[str] = []
    fake_gc = types.SimpleNamespace(collect=lambda: calls.append("collect"), freeze=lambda: calls.append("freeze"))
    monkeypatch.setattr(polish_module, "gc", fake_gc)
    monkeypatch.setattr(polish_module, "_frozen_after_first_call", False)
    pol = make_polisher("openai/faithful", api_base=fake.url, use_cache=False, **FAST)
    calls.clear()  # making the polisher may import litellm, which freezes the heap on its own account
    for _ in range(2):
        api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    assert calls == ["collect", "freeze"] and polish_module._frozen_after_first_call
