"""Case text is data, never template source: it prints exactly as typed (escaped in HTML)."""

from __future__ import annotations

import pytest
from conftest import CHORDOMA

from lettergen import api

NASTY = [
    "{{ 7*7 }}",
    "{% raw %}x",
    "<script>alert(1)</script>",
    "{{ cycler.__init__.__globals__ }}",
    "${7*7}",
]


@pytest.mark.parametrize("name", NASTY)
@pytest.mark.parametrize("fmt", ["md", "txt"])
def test_name_prints_as_typed(name: str, fmt: str) -> None:
    loaded = api.load_case(CHORDOMA)
    case = loaded.case.model_copy(update={"patient": loaded.case.patient.model_copy(update={"name": name})})
    d = api.draft(case, fmt=fmt)
    assert name in d.text
    assert "49" not in d.text.replace("1965", "")  # {{ 7*7 }} was never evaluated
    assert d.validation.ok


@pytest.mark.parametrize("name", NASTY)
def test_html_escapes(name: str) -> None:
    from markupsafe import escape

    loaded = api.load_case(CHORDOMA)
    case = loaded.case.model_copy(update={"patient": loaded.case.patient.model_copy(update={"name": name})})
    html = api.draft(case, fmt="html").text
    assert str(escape(name)) in html
    assert "<script>alert" not in html


def test_recorded_sentences_are_valid_sentences() -> None:
    from pydantic import TypeAdapter

    from lettergen.letter.render import Sentence

    adapter = TypeAdapter(Sentence)
    d = api.draft(api.load_case(CHORDOMA), fmt="md")
    for s in d.letter.sentences:
        assert adapter.validate_python(adapter.dump_python(s)) == s
