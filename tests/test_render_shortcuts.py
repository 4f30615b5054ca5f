"""The shortcuts of the letter path give exactly what Jinja's own path and the plain definitions give.

Three shortcuts keep rendering cheap: a macro call that skips Jinja's per-call introspection
(``_Sandbox.call``), reference entries formatted once per knowledge base (``KnowledgeBase.reference``),
a skeleton assembled by splitting on its marks instead of a regex callback (``assemble``), and a case's
text checked for control characters only when it is not printable (``case._no_control``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import CHORDOMA, EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from lettergen import api
from lettergen.appeals import APPEAL_TYPES, NothingToAppeal
from lettergen.case import _CONTROL, _no_control
from lettergen.kb import load_kb
from lettergen.layout import CLOSE, OPEN
from lettergen.render import LETTER_TYPES, Sentence, _Sandbox, assemble

CASES = sorted(p for p in EXAMPLES.glob("*.yaml") )
WHEN = date(2026, 11, 21)


@contextmanager
def jinja_own_call() -> Iterator[None]:
    """Every call in a template takes the sandbox's own path, as it did before the shortcut."""
    shortcut = _Sandbox.call
    _Sandbox.call = ImmutableSandboxedEnvironment.call  # type: ignore[method-assign]
    try:
        yield
    finally:
        _Sandbox.call = shortcut  # type: ignore[method-assign]


def _letters(path: Path, fmt: str) -> list[tuple[str, list[Sentence], str]]:
    loaded = api.load_case(path)
    types = [t for t in LETTER_TYPES if loaded.case.denial is not None or t not in APPEAL_TYPES]
    out = []
    for t in types:
        try:
            d = api.draft(loaded, letter_type=t, fmt=fmt, letter_date=WHEN, strict=False)
        except NothingToAppeal:  # a case whose denied codes all fail their criteria: no appeal to draft
            continue
        out.append((t, d.letter.sentences, d.letter.skeleton))
    return out


@pytest.mark.parametrize("fmt", ["md", "txt", "html"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_macro_shortcut_renders_what_jinja_renders(path: Path, fmt: str) -> None:
    fast = _letters(path, fmt)
    with jinja_own_call():
        slow = _letters(path, fmt)
    assert [t for t, _, _ in fast] == [t for t, _, _ in slow]
    for (t, sentences, skeleton), (_, slow_sentences, slow_skeleton) in zip(fast, slow, strict=True):
        assert skeleton == slow_skeleton, t
        assert sentences == slow_sentences, t


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_macro_shortcut_escapes_as_jinja_does(fmt: str) -> None:
    # Macro output is Markup under autoescape: returned as a plain str, case text in it would be escaped twice.
    case = api.load_case(CHORDOMA).case
    services = tuple(s.model_copy(update={"site": "left <gluteal> & sacral"}) for s in case.services)
    case = case.model_copy(update={"services": services})
    fast = api.draft(case, fmt=fmt, letter_date=WHEN).letter
    with jinja_own_call():
        slow = api.draft(case, fmt=fmt, letter_date=WHEN).letter
    assert (fast.skeleton, fast.sentences) == (slow.skeleton, slow.sentences)
    assert ("&lt;gluteal&gt; &amp;" if fmt == "html" else "<gluteal> &") in fast.text
    assert "&amp;lt;" not in fast.text


def test_macro_shortcut_is_taken() -> None:
    # Without this, the comparison above could pass with the shortcut never used.
    from jinja2.runtime import Macro

    seen: list[str] = []
    shortcut = _Sandbox.call

    def spy(self: _Sandbox, context: object, obj: object, *args: object, **kwargs: object) -> object:
        if isinstance(obj, Macro) and not kwargs:
            seen.append(obj.name)
        return shortcut(self, context, obj, *args, **kwargs)  # type: ignore[arg-type]

    _Sandbox.call = spy  # type: ignore[method-assign,assignment]
    try:
        api.draft(api.load_case(CASES[0]), letter_date=WHEN)
    finally:
        _Sandbox.call = shortcut  # type: ignore[method-assign]
    assert "service_line" in seen


def test_reference_entries_equal_the_sources_own() -> None:
    kb = load_kb()
    for sid, src in kb.sources.items():
        ref = kb.reference(sid)
        assert (ref.id, ref.text, ref.reference()) == (sid, src.reference(), src.reference())
        assert kb.reference(sid) is ref  # formatted once


# What assemble did before: one regex substitution, a Python callback per placeholder.
_PLACEHOLDER = re.compile(f"{OPEN}([^{OPEN}{CLOSE}]+){CLOSE}")


def _by_pattern(skeleton: str, sentences: list[Sentence], fmt: str) -> str:
    by_id = {s.id: s.text for s in sentences}
    return _PLACEHOLDER.sub(lambda m: str(escape(by_id[m.group(1)])) if fmt == "html" else by_id[m.group(1)], skeleton)


_IDS = ["a", "b.c", "x y"]
_PIECES = st.sampled_from([OPEN, CLOSE, "\n", " ", "<&>", "plain", *_IDS, *(f"{OPEN}{i}{CLOSE}" for i in _IDS)])


def _outcome(fn: Callable[[str, list[Sentence], str], str], *args: Any) -> tuple[str, str]:
    try:
        return ("text", fn(*args))
    except KeyError as exc:  # a placeholder whose id no sentence has
        return ("unknown id", str(exc))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.sampled_from(["md", "html"]))
def test_assemble_equals_the_pattern(skeleton: str, fmt: str) -> None:
    # Stray and doubled marks included: the split must keep what the pattern keeps, replace what it
    # replaces, and refuse the same unknown ids.
    sentences = [Sentence(id=i, text=f"<{i}> & 1", kind="structural") for i in _IDS]
    args = (skeleton, sentences, fmt)
    assert _outcome(assemble, *args) == _outcome(_by_pattern, *args)


@pytest.mark.parametrize(
    ("skeleton", "expect"),
    [
        (f"a {OPEN}x y{CLOSE} b", ("text", "a &lt;x y&gt; &amp; 1 b")),
        (f"{OPEN}{OPEN}a{CLOSE}", ("text", f"{OPEN}&lt;a&gt; &amp; 1")),  # the first mark is stray
        (f"{OPEN}{CLOSE}a", ("text", f"{OPEN}{CLOSE}a")),  # an empty id is no placeholder
        (f"{OPEN}a", ("text", f"{OPEN}a")),  # nor is an unclosed one
        (f"{OPEN}missing{CLOSE}", ("unknown id", "'missing'")),
    ],
)
def test_assemble_cases(skeleton: str, expect: tuple[str, str]) -> None:
    sentences = [Sentence(id=i, text=f"<{i}> & 1", kind="structural") for i in _IDS]
    assert _outcome(assemble, skeleton, sentences, "html") == expect
    assert _outcome(_by_pattern, skeleton, sentences, "html") == expect


def test_layout_macros_are_the_module_an_import_gives() -> None:
    from lettergen.render import _env, templates_dir

    api.draft(api.load_case(CASES[0]), letter_date=WHEN)
    env = _env(str(templates_dir()), "md")
    assert env.globals["x"] is env.get_template("_macros.j2").module
    # A template that still imports it (one written before) gets the same macros.
    imported = env.from_string('{% import "_macros.j2" as y %}{{ y.status_word(r) }}|{{ x.status_word(r) }}')
    assert imported.render(r={"status": "not_met"}) == "Not met|Not met"


@pytest.mark.parametrize(
    ("files", "expect"),
    [
        ({"_macros.j2": "{% macro hello(n) %}hi {{ n }}{% endmacro %}"}, "hi 3"),
        ({}, "undefined"),  # a data folder of one's own without _macros.j2: x is undefined, as before
    ],
)
def test_layout_macros_of_a_data_folder(files: dict[str, str], expect: str) -> None:
    from jinja2 import DictLoader, StrictUndefined, UndefinedError

    from lettergen.render import _layout_macros

    env = _Sandbox(loader=DictLoader(files), undefined=StrictUndefined)
    env.globals["x"] = _layout_macros(env)
    template = env.from_string("{{ x.hello(3) }}")
    try:
        assert template.render() == expect
    except UndefinedError:
        assert expect == "undefined"


@pytest.mark.parametrize("char", [chr(c) for c in range(0x110000) if _CONTROL.search(chr(c))], ids=ord)
def test_every_control_character_is_refused_despite_the_printable_fast_path(char: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        _no_control(f"a{char}b")


@pytest.mark.parametrize("text", ["plain", "line\nbreak", "tab\there", "no\u00a0break", "é ö İ", "50% ≥ 5 cm"])
def test_text_without_control_characters_passes(text: str) -> None:
    assert _no_control(text) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n", "a", " ", OPEN]), max_size=20).map("".join))
def test_blank_runs_fold_as_the_plain_pattern_folds_them(text: str) -> None:
    from lettergen.render import _BLANK_RUN

    assert _BLANK_RUN.sub("\n\n", text) == re.sub(r"\n{3,}", "\n\n", text)


@pytest.mark.parametrize(
    ("day", "long", "iso"),
    [
        (date(2026, 3, 5), "March 5, 2026", "2026-03-05"),
        (date(2026, 10, 10), "October 10, 2026", "2026-10-10"),
        (date(2026, 11, 21), "November 21, 2026", "2026-11-21"),
    ],
)
def test_date_filters_print_what_the_methods_printed(day: date, long: str, iso: str) -> None:
    from lettergen.render import _env, templates_dir

    env = _env(str(templates_dir()), "md")
    template = env.from_string("{{ d | long_date }}|{{ d | iso }}")
    assert template.render(d=day) == f"{long}|{iso}"
    assert day.strftime("%B %d, %Y").replace(" 0", " ") == long  # the header's former expression
