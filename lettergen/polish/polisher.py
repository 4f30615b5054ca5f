"""Guarded model polish (the design notes' "Polish protocol"): lock -> model -> guard -> unlock, or fall back.

This is the only module that imports litellm, and only when a polisher is made. The flow for a letter:

1. lock every prose sentence (:mod:`lettergen.polish.lock`); identical locked sentences are sent once, under
   short aliases (``s1``, ``s2``...) so that codes in sentence ids never pass the lock;
2. ask the model for JSON keyed by those ids (prompt: ``prompts/polish-v1.yaml``);
3. check each answer with the guard (:mod:`lettergen.polish.guard`) and the validator's sentence rules; ask
   again for the failures, with the reasons, at most ``reasks`` times; the rest fall back to the template;
4. unlock the accepted sentences, and revert any the whole-letter validator objects to.

Transient errors (timeout, 429, 5xx, connection) are retried with exponential backoff by tenacity in
:meth:`Polisher._complete`, the one place that talks to the model; litellm's own retries are off. A letter
waits for the model at most :func:`wait_bound` seconds in all (``max_wait``, 120 s by default): a try is given
no more than the time left (its timeout is cut to it), and no retry starts once the backoff before it would use
that time up. When the model stays unreachable the letter keeps its template wording and the polish record
says why.

Each request asks for a bounded answer (``max_tokens``, :func:`max_tokens_for`) and for JSON by schema
(:func:`answer_schema`, ``response_format`` ``json_schema``), which OpenAI, vLLM and llama.cpp's server
enforce; a provider that refuses the schema is asked again, once, for a plain JSON object.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base

from lettergen.api import Polished
from lettergen.case.model import Case
from lettergen.decision.engine import Decision
from lettergen.errors import MissingExtra, ModelUnavailable
from lettergen.files import cache_dir
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter, Sentence
from lettergen.polish.cache import ResponseCache, cache_key
from lettergen.polish.gate import GATE, gated_client
from lettergen.polish.guard import judge
from lettergen.polish.lock import MIN_WORDS, Locker, free_words, is_prose, leaks
from lettergen.polish.prompts import DEFAULT_PROMPT, Prompt, load_prompt
from lettergen.provenance.ledger import PolishRecord
from lettergen.validation.rules import ValidationResult, atoms, header_text, validate_letter


@dataclass(frozen=True)
class PolishSettings:
    model: str
    api_base: str | None = None
    timeout: float = 60.0  # seconds per request
    attempts: int = 4  # per request, for transient errors only
    backoff: float = 1.0  # first wait in seconds; doubles per attempt
    backoff_max: float = 20.0
    max_wait: float = 120.0  # seconds one letter waits for the model in all (see wait_bound)
    reasks: int = 2  # times a failing sentence is asked again with the guard's reasons
    cache_dir: Path | None = None  # None: LETTERGEN_CACHE_DIR or ~/.cache/lettergen
    use_cache: bool = True
    prompt: str = DEFAULT_PROMPT
    temperature: float = 0.0
    api_key: str | None = None  # None: the provider's usual environment variable (OPENAI_API_KEY...)


@dataclass
class _Tally:
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None


def import_litellm() -> Any:
    """Import litellm with its remote cost-map lookup off; MissingExtra (exit 3) when it is not installed."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    try:
        import litellm
    except ImportError:
        raise MissingExtra("llm", "--polish") from None
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.num_retries = 0
    if litellm.client_session is None:  # a client the user set stays theirs (polish then gates whole calls)
        litellm.client_session = gated_client()
    # litellm's import leaves some hundred thousand long-lived objects; without this every full garbage
    # collection walks them again, which costs a polished letter about a tenth of its CPU time.
    gc.collect()
    gc.freeze()
    return litellm


_AFTER_FIRST_CALL = threading.Lock()
_frozen_after_first_call = False


def _freeze_after_first_call() -> None:
    """Freeze the heap once more, after this process's first model answer.

    litellm imports much of itself (the provider's SDK, its handlers, their types) on its first call, some
    sixty thousand objects that live as long as the process. Left unfrozen, every full collection walks
    them again: 40-120 ms during which no thread of this process runs, so that answers wait in their
    sockets and slots stay taken. Freezing them (as ``import_litellm`` does for the import) leaves a full
    collection only the letters in progress to walk.
    """
    global _frozen_after_first_call
    with _AFTER_FIRST_CALL:
        if not _frozen_after_first_call:
            _frozen_after_first_call = True
            gc.collect()
            gc.freeze()


def make_polisher(model: str, api_base: str | None = None, **options: Any) -> Polisher:
    """A polisher for :func:`lettergen.api.draft` (``polish=``); options are :class:`PolishSettings` fields."""
    return Polisher(PolishSettings(model=model, api_base=api_base, **options))


def wait_bound(settings: PolishSettings) -> float:
    """The most seconds one letter waits for the model: ``max_wait``, or less when its requests cannot take that long.

    A letter makes at most ``1 + reasks`` requests (the ask and its re-asks), each tried at most ``attempts``
    times, each try at most ``timeout`` seconds, with tenacity's exponential backoff between tries
    (``backoff``, doubling, each wait at most ``backoff_max``). :meth:`Polisher.polish` enforces the result as
    the letter's deadline. Time spent queued for a slot behind other letters' requests (``concurrency`` in a
    batch) is not waiting for the model and is not counted."""
    s = settings
    attempts = max(1, s.attempts)
    backoff = sum(min(s.backoff_max, s.backoff * 2.0**i) for i in range(attempts - 1))
    per_request = attempts * s.timeout + backoff
    return min(s.max_wait, (1 + max(0, s.reasks)) * per_request)


# The answer repeats the sentences sent, edited: the guard accepts at most 1.6 times a sentence's length, and
# the JSON around them is that of the input. Twice the input's token estimate, plus a margin for the wrapper
# and for the shortest batches, leaves room for every answer the guard could accept, while a model that runs
# on (explains itself, repeats, never closes the JSON) is cut off at a cost in proportion to the letter, not
# to its context window. Tokens are estimated at 3 bytes of UTF-8 each (English prose runs about 4 characters
# a token; the locked tokens' brackets and digits fewer), so the estimate errs high. The cap, about 15 KB of
# sentences (the largest example letter sends 3.2 KB), keeps prompt and answer within a local server's 8k
# context and under every hosted model's output limit.
MAX_TOKENS_MARGIN = 256
MAX_TOKENS_CAP = 4096


def max_tokens_for(sentences_json: str) -> int:
    """The ``max_tokens`` of a request that sends these sentences (the locked batch, as JSON)."""
    estimate = -(-len(sentences_json.encode("utf-8")) // 3)
    return min(MAX_TOKENS_CAP, 2 * estimate + MAX_TOKENS_MARGIN)


def answer_schema(aliases: list[str]) -> dict[str, Any]:
    """The JSON schema of an answer to these sentence aliases, for ``response_format`` ``json_schema``.

    Exactly the aliases sent, each a string, nothing else (``additionalProperties: false``, every key
    required, as OpenAI's strict mode asks), under ``sentences``: the shape the prompt asks for
    (``{"sentences": {"<id>": "<edited sentence>"}}``), so that a server that constrains its output to the
    schema and the prompt's instructions agree."""
    inner = {
        "type": "object",
        "properties": {a: {"type": "string"} for a in aliases},
        "required": list(aliases),
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"sentences": inner},
        "required": ["sentences"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "polished_sentences", "schema": schema, "strict": True}}


JSON_OBJECT: dict[str, Any] = {"type": "json_object"}


def _rejects_format(exc: BaseException) -> bool:
    """A provider's refusal of the ``response_format`` asked for (a 400 that names it)."""
    status = getattr(exc, "status_code", None)
    text = str(exc).lower()
    return status == 400 and ("response_format" in text or "json_schema" in text)


def endpoint(lt: Any, model: str, api_base: str | None) -> str | None:
    """Where this model's requests go: the API base, or the one the provider's route or environment selects.

    Part of the cache key: the same model name behind another server is another model."""
    if api_base:
        return api_base.rstrip("/")
    try:
        _, provider, _, base = lt.get_llm_provider(model)
    except Exception:  # litellm cannot route the name: completion will say so; the name keys the cache alone
        return None
    if not base and provider in ("openai", "text-completion-openai"):  # the variables litellm's OpenAI route reads
        base = lt.api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    return f"{provider} {str(base).rstrip('/')}" if base else str(provider)


class _Deadline:
    """One letter's wait for the model, on this thread's clock less its time queued for a slot (``GATE``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reached = False
        self._start = time.monotonic()
        self._queued = GATE.queued

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self._start - (GATE.queued - self._queued))


class _StopAtDeadline(stop_base):
    """Stop retrying when the backoff before the next try would leave it no time before the deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline.left() - retry_state.upcoming_sleep > 0:
            return False
        self.deadline.reached = True
        return True


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_answer(content: str) -> tuple[dict[str, Any] | None, str | None]:
    """The model's JSON object keyed by sentence id, or a reason why there is none."""
    text = _FENCE.sub("", content.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "the answer was not a JSON object"
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None, "the answer was not valid JSON"
    if isinstance(data, dict) and isinstance(data.get("sentences"), dict):
        data = data["sentences"]
    if not isinstance(data, dict):
        return None, "the answer was not a JSON object keyed by sentence id"
    return data, None


class Polisher:
    """Callable with the signature :func:`lettergen.api.draft` expects; safe to share between threads."""

    def __init__(self, settings: PolishSettings) -> None:
        self.settings = settings
        self.prompt: Prompt = load_prompt(settings.prompt)
        self._lt = import_litellm()
        root = settings.cache_dir or cache_dir()
        self._cache = ResponseCache(root) if settings.use_cache else None
        # Worker processes for many letters, started by lettergen.polish.pool and kept here until closed.
        self.workers: Any = None
        self.workers_lock = threading.Lock()
        # Whether this model's route sends its requests through the gated client (learned on the first call).
        self._gated_http = False
        # Whether the provider refused a JSON schema (learned on the first refusal; then a JSON object is asked).
        self._schema_refused = False
        self.endpoint = endpoint(self._lt, settings.model, settings.api_base)

    def __reduce__(self) -> tuple[Any, ...]:
        # A polisher reaches a worker process as its settings; the worker builds (once) its own.
        return (shared_polisher, (self.settings,))

    def close_workers(self, wait: bool = True) -> None:
        """Stop this polisher's worker processes (``wait``: let them finish a shard first)."""
        with self.workers_lock:
            if self.workers is not None:
                self.workers.close(wait)
                self.workers = None

    # -- the one place that talks to the model ------------------------------------------------------
    def _transient(self, exc: BaseException) -> bool:
        lt = self._lt
        kinds = (lt.Timeout, lt.RateLimitError, lt.APIConnectionError, lt.InternalServerError)
        kinds += (lt.ServiceUnavailableError, lt.BadGatewayError)  # type: ignore[assignment]
        status = getattr(exc, "status_code", None)
        return isinstance(exc, kinds) or (isinstance(status, int) and (status in (408, 429) or status >= 500))

    def _complete(
        self, messages: list[dict[str, str]], pending: dict[str, str], tally: _Tally, deadline: _Deadline
    ) -> Any:
        s = self.settings
        if deadline.left() <= 0:
            deadline.reached = True
            raise ModelUnavailable(f"model unavailable: the letter's {deadline.seconds:g} s wait limit was reached")

        key = s.api_key
        if key is None and s.api_base and s.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            key = "unused"  # a local OpenAI-compatible server (vLLM, llama.cpp, Ollama) needs no key
        extra = {"api_key": key} if key else {}
        max_tokens = max_tokens_for(json.dumps(pending, ensure_ascii=False, indent=1))

        def send(response_format: dict[str, Any]) -> Any:
            tally.calls += 1
            return self._lt.completion(
                model=s.model,
                messages=messages,
                api_base=s.api_base,
                # Never past the letter's deadline: a try gets the time left when that is less than the timeout.
                timeout=max(0.001, min(s.timeout, deadline.left())),
                temperature=s.temperature,
                max_tokens=max_tokens,
                response_format=response_format,
                num_retries=0,
                max_retries=0,
                **extra,
            )

        def attempt() -> Any:
            if self._schema_refused:
                return send(JSON_OBJECT)
            try:
                return send(answer_schema(list(pending)))
            except Exception as exc:
                if not _rejects_format(exc) or deadline.left() <= 0:
                    raise
                self._schema_refused = True  # this polisher asks for a JSON object from now on
                return send(JSON_OBJECT)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, s.attempts)) | _StopAtDeadline(deadline),
            wait=wait_exponential(multiplier=s.backoff, max=s.backoff_max),
            retry=retry_if_exception(self._transient),
            reraise=True,
        )
        gate = GATE
        try:
            if gate.slots is None or self._gated_http:
                return retrying(attempt)
            # Until a request is seen at the gate, the whole call holds a slot: a route with a client of
            # its own (not litellm's OpenAI client) is then still held to ``concurrency`` calls in flight.
            gate.held, gate.seen = True, False
            try:
                with gate.queue():
                    return retrying(attempt)
            finally:
                gate.held = False
                if gate.seen:
                    self._gated_http = True
        except Exception as exc:  # callers see ModelUnavailable, never tenacity's or litellm's errors
            status = getattr(exc, "status_code", None)
            what = type(exc).__name__ + (f" (HTTP {status})" if isinstance(status, int) else "")
            tries = f" after {tally.calls} attempt{'s' if tally.calls != 1 else ''}" if self._transient(exc) else ""
            limit = f", at the letter's {deadline.seconds:g} s wait limit" if deadline.reached else ""
            raise ModelUnavailable(f"model unavailable: {what}{tries}{limit}") from None

    def _ask(self, pending: dict[str, str], rejected: dict[str, Any], tally: _Tally, deadline: _Deadline) -> str:
        messages = self._messages(pending, rejected)
        key = cache_key(self.settings.model, self.prompt.ref, messages, endpoint=self.endpoint)
        if self._cache is not None:
            entry = self._cache.get(key, self.settings.model, self.prompt.ref)
            if entry is not None:
                tally.cache_hits += 1
                return str(entry["content"])
        resp = self._complete(messages, pending, tally, deadline)
        if not _frozen_after_first_call:
            _freeze_after_first_call()
        content = resp.choices[0].message.content or ""
        usage = getattr(resp, "usage", None)
        t_in, t_out = int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
        tally.tokens_in += t_in
        tally.tokens_out += t_out
        # litellm prices every response as it builds it; asking again (completion_cost) would repeat that work.
        cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            tally.cost = (tally.cost or 0.0) + float(cost)
        if self._cache is not None:
            entry = {"model": self.settings.model, "prompt": self.prompt.ref, "content": content}
            self._cache.put(key, {**entry, "tokens_in": t_in, "tokens_out": t_out})
        return str(content)

    def _messages(self, pending: dict[str, str], rejected: dict[str, Any]) -> list[dict[str, str]]:
        dump = json.dumps(pending, ensure_ascii=False, indent=1)
        if rejected:
            user = self.prompt.render(
                "retry", sentences_json=dump, rejected_json=json.dumps(rejected, ensure_ascii=False, indent=1)
            )
        else:
            user = self.prompt.render("user", sentences_json=dump)
        return [{"role": "system", "content": self.prompt.render("system")}, {"role": "user", "content": user}]

    # -- one letter ----------------------------------------------------------------------------------
    def polish(self, letter: Letter, case: Case, decision: Decision, kb: KnowledgeBase) -> Polished:
        """As calling the polisher, with the validator's verdict on the polished letter when it has one.

        The safety net below validates the whole polished letter; when it reverts nothing, that verdict is
        the letter's, and :func:`lettergen.api.finish` need not compute it again (None: it must)."""
        locker = Locker(case, decision, kb)
        groups: dict[str, list[str]] = {}
        for s in letter.sentences:
            if is_prose(s):
                locked = locker.lock(s.text)
                if len(free_words(locked)) >= MIN_WORDS:
                    groups.setdefault(locked, []).append(s.id)
        originals = {f"s{i}": text for i, text in enumerate(groups, start=1)}
        ids_of = {alias: groups[text] for alias, text in originals.items()}
        by_id = {s.id: s for s in letter.sentences}
        head = set(atoms(header_text(case)))
        tally = _Tally()
        accepted: dict[str, str] = {}
        pending = dict(originals)
        last: dict[str, tuple[str | None, list[str]]] = {}  # alias -> (rejected candidate, reasons)
        error: str | None = None
        found = leaks(json.dumps(originals, ensure_ascii=False) + self.prompt.render("system"), case)
        if found:  # defence in depth: the lock missed something, so nothing is sent
            error = f"refused to send: {', '.join(found)} survived locking"
        rounds = 0 if found else 1 + max(0, self.settings.reasks)
        deadline = _Deadline(wait_bound(self.settings))
        for _ in range(rounds):
            if not pending:
                break
            rejected = {a: {"rejected": last[a][0], "reasons": last[a][1]} for a in pending if a in last}
            try:
                content = self._ask(pending, rejected, tally, deadline)
            except ModelUnavailable as exc:
                error = str(exc)
                break
            answer, problem = parse_answer(content)
            still: dict[str, str] = {}
            for alias, original in pending.items():
                cand = answer.get(alias) if answer is not None else None
                sents = [by_id[sid] for sid in ids_of[alias]]
                reasons = [problem] if problem else judge(original, cand, locker.vault, sents, case, kb, head)
                if reasons:
                    still[alias] = original
                    last[alias] = (cand if isinstance(cand, str) else None, reasons)
                else:
                    accepted[alias] = locker.vault.unlock(str(cand))
            pending = still
        fell_back: dict[str, list[str]] = {}
        new: list[Sentence] = []
        alias_of = {sid: alias for alias, sids in ids_of.items() for sid in sids}
        for s in letter.sentences:
            key = alias_of.get(s.id)
            if key is None or (found and key not in accepted):
                new.append(s)
            elif key in accepted:
                new.append(replace(s, text=" ".join(accepted[key].split()), origin="polished"))
            else:
                fell_back[s.id] = last[key][1] if key in last else [error or "not answered"]
                new.append(replace(s, origin="fallback"))
        polished, validation = _revert_invalid(
            letter, letter.model_copy(update={"sentences": new}), case, decision, kb, fell_back
        )
        done = [s.id for s in polished.sentences if s.origin == "polished"]
        status = "ok" if not fell_back and not error else ("partial" if done else "fell back")
        if error and not done:
            status = "error"
        record = PolishRecord(
            model=self.settings.model,
            prompt=f"{self.prompt.ref} sha256:{self.prompt.sha256[:16]}",
            calls=tally.calls,
            cache_hits=tally.cache_hits,
            cached=tally.calls == 0 and tally.cache_hits > 0,
            tokens_in=tally.tokens_in,
            tokens_out=tally.tokens_out,
            cost_usd=round(tally.cost, 6) if tally.cost is not None else None,
            sent=sorted(sid for sids in ids_of.values() for sid in sids) if not found else [],
            accepted=done,
            fell_back=fell_back,
            status=status,
            error=error,
        )
        return Polished(polished, record, self.prompt.ref, validation)


def _revert_invalid(
    template: Letter,
    polished: Letter,
    case: Case,
    decision: Decision,
    kb: KnowledgeBase,
    fell_back: dict[str, list[str]],
) -> tuple[Letter, ValidationResult | None]:
    """Safety net: a polished sentence the whole-letter validator objects to goes back to the template.

    Returns the letter, and the validator's result for it when nothing went back (else None)."""
    changed = {s.id for s in polished.sentences if s.origin == "polished"}
    validation = validate_letter(polished, case, decision, kb)
    after = [i for i in validation.issues if i.sentence in changed]
    if not after:
        return polished, validation
    one = {s.id: s for s in template.sentences}
    before = {
        (i.sentence, i.rule, i.message)
        for i in validate_letter(
            template.model_copy(update={"sentences": [one[x] for x in changed]}), case, decision, kb
        ).issues
    }
    bad: dict[str, list[str]] = {}
    for i in after:
        if (i.sentence, i.rule, i.message) not in before:
            bad.setdefault(str(i.sentence), []).append(f"validator rule {i.rule}: {i.message}")
    if not bad:
        return polished, validation
    out = []
    for s in polished.sentences:
        if s.id in bad:
            fell_back[s.id] = bad[s.id]
            s = replace(one[s.id], origin="fallback")
        out.append(s)
    return polished.model_copy(update={"sentences": out}), None


_SHARED: dict[Any, Polisher] = {}


def shared_polisher(settings: PolishSettings) -> Polisher:
    """This process's polisher for these settings (a worker builds it once and keeps its HTTP client warm)."""
    pol = _SHARED.get(settings)
    if pol is None:
        pol = _SHARED[settings] = Polisher(settings)
    return pol
