"""What a polish request carries and how long a letter may wait for it (issue 19, points 7 and 8).

Through lettergen's API and CLI against loopback fakes (tests/fake_llm.py), which keep every request body:
bounded ``max_tokens`` and a JSON schema of the sentences sent, with a JSON-object fallback; a deadline on a
letter's whole wait; the sentences no model ever sees; and a cache that tells two servers apart.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lettergen import api
from lettergen.errors import LettergenError
from lettergen.letter.render import LETTER_TYPES
from tests.conftest import CHORDOMA, EXAMPLES, run_cli
from tests.fake_llm import FakeLLM

# Never import litellm here: lettergen.polish.polisher imports it with its remote cost-map lookup off.
if importlib.util.find_spec("litellm") is None:
    pytest.skip("the llm extra is not installed", allow_module_level=True)

from lettergen.polish.polisher import (
    MAX_TOKENS_CAP,
    PolishSettings,
    endpoint,
    make_polisher,
    max_tokens_for,
    wait_bound,
)

DAY = date(2026, 11, 21)
FAST = {"timeout": 2.0, "attempts": 3, "backoff": 0.01, "backoff_max": 0.02}

# What no model may ever reword, by sentence id: the verdicts (a determination's conclusion, a verdict claim,
# a summary of a code's verdict, a criterion with its status, the criteria not yet documented), the request
# (the introduction that names it, the asks, what the letter leaves out), the deadline and the denial.
NEVER_SENT = re.compile(
    r"(determination|verdict|summary|request|scope|deadline|denial)\..+|rationale\.[^.]+\.([^.]+\.criterion|open)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    srv = FakeLLM().start()
    yield srv
    srv.stop()


@pytest.fixture
def fake(server: FakeLLM) -> FakeLLM:
    server.reset()
    server.behaviour, server.reject_schema = None, False
    return server


def _sentences_sent(body: dict[str, Any]) -> dict[str, str]:
    user = body["messages"][-1]["content"]
    return dict(json.loads(user.split("<sentences>", 1)[1].split("</sentences>", 1)[0]))


def test_a_request_bounds_its_answer_and_asks_for_the_schema_of_its_sentences(fake: FakeLLM) -> None:
    pol = make_polisher("openai/liar-once", api_base=fake.url, use_cache=False, **FAST)
    d = api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    assert (d.ledger.polish.status, d.ledger.polish.calls) == ("ok", 2)  # the ask, and the re-ask of them all
    bodies = fake.received()
    assert len(bodies) == 2
    for body in bodies:
        sent = _sentences_sent(body)
        aliases = list(sent)
        assert aliases and aliases == [f"s{i}" for i in range(1, len(aliases) + 1)]
        # max_tokens is there, bounded, and room enough for the sentences to come back edited
        tokens = body["max_tokens"]
        assert isinstance(tokens, int) and 0 < tokens <= MAX_TOKENS_CAP
        assert tokens == max_tokens_for(json.dumps(sent, ensure_ascii=False, indent=1))
        assert tokens >= 2 * len(json.dumps(sent, ensure_ascii=False)) // 4
        # the answer's schema: exactly the aliases sent, each a string, nothing else
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True and fmt["json_schema"]["name"]
        schema = fmt["json_schema"]["schema"]
        assert schema["required"] == ["sentences"] and schema["additionalProperties"] is False
        inner = schema["properties"]["sentences"]
        assert inner["type"] == "object" and inner["additionalProperties"] is False
        assert inner["properties"] == {a: {"type": "string"} for a in aliases}
        assert inner["required"] == aliases


def test_max_tokens_grows_with_the_batch_and_stops_at_the_cap() -> None:
    one = json.dumps({"s1": "A short sentence to polish."})
    many = json.dumps({f"s{i}": "A sentence of a letter, with a token ⟦T3⟧ in it [2]." for i in range(1, 40)})
    assert max_tokens_for(one) < max_tokens_for(many) <= MAX_TOKENS_CAP
    assert max_tokens_for(many) >= 2 * len(many.encode("utf-8")) // 4  # twice a generous token estimate
    assert max_tokens_for(json.dumps({f"s{i}": "word " * 200 for i in range(1, 60)})) == MAX_TOKENS_CAP


def test_a_provider_that_refuses_the_schema_is_asked_once_for_a_json_object(fake: FakeLLM) -> None:
    fake.reject_schema = True  # a 400 naming response_format, as a server without structured outputs answers
    pol = make_polisher("openai/faithful", api_base=fake.url, use_cache=False, **FAST)
    first = api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    assert (first.ledger.polish.status, first.ledger.polish.calls) == ("ok", 2)
    assert [b["response_format"]["type"] for b in fake.received()] == ["json_schema", "json_object"]
    assert "usually rests on" in first.text
    # The polisher remembers: the next letter asks for a JSON object straight away.
    fake.reset()
    again = api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    assert (again.ledger.polish.status, again.ledger.polish.calls) == ("ok", 1)
    assert [b["response_format"] for b in fake.received()] == [{"type": "json_object"}]
    assert again.text == first.text


def test_other_bad_requests_are_not_taken_for_a_refused_schema(fake: FakeLLM) -> None:
    # A 400 that says nothing of response_format is a plain error: no second request, the template stays.
    pol = make_polisher("openai/bad-request", api_base=fake.url, use_cache=False, **FAST)
    d = api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    assert d.ledger.polish.status == "error" and d.ledger.polish.calls == 1
    assert d.text == api.draft(api.load_case(CHORDOMA), letter_date=DAY).text


def _draft_every_letter(polisher: Any) -> Iterator[tuple[Path, str, Any, Any]]:
    """(example, type, polished draft, offline draft) for every letter the examples draft."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        loaded = api.load_case(path)
        for ltype in LETTER_TYPES:
            try:
                offline = api.draft(loaded, letter_type=ltype, letter_date=DAY, strict=False)
            except LettergenError:  # no code to request, or no denial to appeal: no letter of this type
                continue
            polished = api.draft(loaded, letter_type=ltype, letter_date=DAY, polish=polisher, strict=False)
            yield path, ltype, polished, offline


def test_verdicts_asks_deadlines_and_denials_never_reach_a_model(fake: FakeLLM) -> None:
    pol = make_polisher("openai/faithful", api_base=fake.url, use_cache=False, **FAST)
    types: set[str] = set()
    kept: set[str] = set()
    letters = polished_letters = 0
    for path, ltype, polished, offline in _draft_every_letter(pol):
        rec = polished.ledger.polish
        assert rec.status in ("ok", "partial"), (path.name, ltype, rec)
        letters += 1
        polished_letters += bool(rec.accepted)
        leaked = [sid for sid in rec.sent if NEVER_SENT.fullmatch(sid)]
        assert leaked == [], (path.name, ltype, leaked)
        template = {s.id: s for s in offline.letter.sentences}
        for s in polished.letter.sentences:
            if NEVER_SENT.fullmatch(s.id):
                assert (s.text, s.origin) == (template[s.id].text, template[s.id].origin), (path.name, ltype, s.id)
                kept.add(s.id.split(".")[0] if not s.id.startswith("rationale.") else "criterion")
        types.add(ltype)
    assert types == set(LETTER_TYPES)
    assert polished_letters >= letters * 3 // 4  # the rest of the prose is still polished
    # Every kind of sentence the rule names occurs in the examples' letters, so the test tests each of them.
    assert {"verdict", "summary", "request", "deadline", "denial", "determination", "criterion"} <= kept
    # ... and none of their text reached the model at all (the fake saw only what polish.sent names).
    seen = "".join(b["messages"][-1]["content"] for b in fake.received())
    assert "I ask" not in seen and "Internal appeal" not in seen and "The stated reason" not in seen


def test_two_servers_behind_one_model_name_never_share_answers(tmp_path: Path) -> None:
    # One model name, two servers: the first rewords faithfully, the second rewords otherwise. One cache.
    first_server, second_server = FakeLLM().start(), FakeLLM().start()
    first_server.behaviour, second_server.behaviour = "faithful", "faithful-alt"
    try:

        def run(srv: FakeLLM) -> Any:
            pol = make_polisher("openai/local-model", api_base=srv.url, cache_dir=tmp_path, **FAST)
            return api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)

        first = run(first_server)
        assert first.ledger.polish.calls == 1 and "usually rests on" in first.text
        second = run(second_server)
        assert (second.ledger.polish.calls, second.ledger.polish.cache_hits) == (1, 0)
        assert second_server.bodies and "typically rests on" in second.text and "usually rests on" not in second.text
        # Each server's answers are still cached under its own address.
        sent = len(first_server.bodies)
        again = run(first_server)
        assert (again.ledger.polish.calls, again.ledger.polish.cached) == (0, True)
        assert len(first_server.bodies) == sent and again.text == first.text
    finally:
        first_server.stop()
        second_server.stop()


def test_the_endpoint_in_the_cache_key_follows_what_selects_the_server(
    fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    lt = make_polisher("openai/x", api_base=fake.url, use_cache=False)._lt
    assert endpoint(lt, "openai/x", "http://10.0.0.1:8000/v1/") == endpoint(lt, "openai/x", "http://10.0.0.1:8000/v1")
    assert endpoint(lt, "openai/x", "http://10.0.0.1:8000/v1") != endpoint(lt, "openai/x", "http://10.0.0.2:8000/v1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    plain = endpoint(lt, "openai/x", None)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.3:8000/v1")  # litellm's OpenAI route reads it
    assert endpoint(lt, "openai/x", None) != plain
    assert endpoint(lt, "hosted_vllm/x", "http://h/v1") != endpoint(lt, "openai/x", "http://h2/v1")


def test_the_wait_bound_of_a_letter() -> None:
    s = PolishSettings(model="m")
    # The defaults: 60 s a request and 4 tries could wait 247 s a request, 741 s a letter; 120 s is the bound.
    assert (s.timeout, s.attempts, s.max_wait) == (60.0, 4, 120.0)
    assert wait_bound(s) == 120.0
    unbounded = PolishSettings(model="m", max_wait=1e9)
    assert wait_bound(unbounded) == 3 * (4 * 60 + 1 + 2 + 4)  # 3 requests (ask, 2 re-asks) of 4 tries + backoff
    clamped = PolishSettings(model="m", timeout=1, attempts=4, backoff=10, backoff_max=15, reasks=0, max_wait=1e9)
    assert wait_bound(clamped) == 4 * 1 + 10 + 15 + 15
    assert wait_bound(PolishSettings(model="m", timeout=5, attempts=1, reasks=1, max_wait=1e9)) == 10
    assert wait_bound(PolishSettings(model="m", timeout=5, attempts=1, reasks=1, max_wait=7)) == 7


@pytest.fixture
def silent() -> Iterator[FakeLLM]:
    """A server that never answers (until it stops)."""
    srv = FakeLLM().start()
    srv.hang = 600.0
    yield srv
    srv.stop()


def test_a_model_that_never_answers_keeps_the_letter_within_its_wait_bound(silent: FakeLLM) -> None:
    attempts = 20
    pol = make_polisher(
        "openai/hang", api_base=silent.url, use_cache=False, timeout=0.2, attempts=attempts, backoff=0.01,
        backoff_max=0.01, max_wait=0.5,
    )  # fmt: skip
    d = api.draft(api.load_case(CHORDOMA), letter_date=DAY, polish=pol)
    rec = d.ledger.polish
    assert rec.status == "error" and rec.error and rec.error.startswith("model unavailable")
    assert "wait limit" in rec.error
    # Each try waited its timeout: the deadline, not the number of attempts, stopped the retries.
    assert 1 <= rec.calls < attempts
    assert all(rec.fell_back[sid] for sid in rec.sent)
    assert d.text == api.draft(api.load_case(CHORDOMA), letter_date=DAY).text


def test_cli_timeout_and_max_wait(silent: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(tmp_path / "cache"))
    base = ["draft", str(CHORDOMA), "--date", "2026-11-21", "-o", str(tmp_path), "--polish", "--model", "openai/hang"]
    code, _, err = run_cli(*base, "--api-base", silent.url, "--timeout", "0.2", "--max-wait", "0.5")
    assert code == 0 and "polish: error" in err  # the letter is written from the template
    ledger = json.loads((tmp_path / "chordoma-gluteal-001.lmn.ledger.json").read_text(encoding="utf-8"))
    assert ledger["polish"]["status"] == "error" and "wait limit" in ledger["polish"]["error"]
    for flag in ("--timeout", "--max-wait"):
        code, _, err = run_cli(*base, "--api-base", silent.url, flag, "0")
        assert code == 2 and flag in err


@pytest.mark.parametrize("command", ["draft", "batch"])
def test_the_polish_commands_state_the_bound_in_their_help(command: str) -> None:
    code, out, _ = run_cli(command, "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    assert "--timeout" in text and "Seconds one model request may take" in text
    assert f"at most {PolishSettings(model='m').attempts} times in all, within --max-wait" in text
    assert "--max-wait" in text and "Seconds one letter may wait for the model in all" in text
    assert "[default: 60.0]" in text and "[default: 120.0]" in text


def test_batch_takes_the_polish_bounds(fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTERGEN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "batch", str(CHORDOMA), "-o", str(out), "--date", "2026-11-21", "--polish", "--model", "openai/faithful",
        "--api-base", fake.url, "--timeout", "5", "--max-wait", "30",
    )  # fmt: skip
    assert code == 0, stdout + err
    ledger = json.loads((out / "chordoma-gluteal-001.lmn.ledger.json").read_text(encoding="utf-8"))
    assert ledger["polish"]["status"] == "ok"
    code, _, err = run_cli("batch", str(CHORDOMA), "-o", str(out), "--polish", "--model", "m", "--max-wait", "-1")
    assert code == 2 and "--max-wait" in err
