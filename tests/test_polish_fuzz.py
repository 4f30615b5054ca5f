"""Property-based: whatever a model answers, polishing ends in a valid letter or a documented error."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettergen import api
from lettergen.errors import LettergenError
from tests.conftest import CHORDOMA

# Skip without the extra, but never import litellm here: lettergen.polish.polisher imports it with its remote
# cost-map lookup switched off, and a bare import would try the network.
if importlib.util.find_spec("litellm") is None:
    pytest.skip("the llm extra is not installed", allow_module_level=True)

LOADED = api.load_case(CHORDOMA)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
keyed_answers = st.dictionaries(
    st.sampled_from([f"s{i}" for i in range(1, 30)]) | st.text(max_size=6),
    st.text(max_size=200) | json_values,
    max_size=12,
).map(lambda d: json.dumps(d, ensure_ascii=False))
answers = st.one_of(
    st.text(max_size=300),
    keyed_answers,
    keyed_answers.map(lambda j: f"```json\n{j}\n```"),
    keyed_answers.map(lambda j: json.dumps({"sentences": json.loads(j)})),
)


@pytest.fixture(scope="module")
def polisher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from lettergen.polish.polisher import make_polisher

    pol = make_polisher("openai/fuzz", api_base="http://127.0.0.1:9", use_cache=False, timeout=1.0, attempts=1)
    yield pol


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=answers)
def test_any_model_answer_ends_in_a_valid_letter(polisher: Any, answer: str, tmp_path: Path) -> None:
    def fake_ask(pending: dict[str, str], rejected: dict[str, Any], tally: Any, deadline: Any) -> str:
        tally.calls += 1
        return answer

    polisher._ask = fake_ask  # the model's answer, whatever it is; no network
    try:
        draft = api.draft(LOADED, polish=polisher)
    except LettergenError:
        return
    assert draft.validation.ok
    offline = {s.id: s.text for s in api.draft(LOADED).letter.sentences}
    for s in draft.letter.sentences:
        if s.origin != "polished":
            assert s.text == offline[s.id]
    assert "⟦" not in draft.text  # every lock token was unlocked, or its sentence fell back
