"""The YAML fast path (yamlio._fast_load) gives exactly what PyYAML's loader gives: the same value, with the
same types, or the same error. Table rows for each kind of node it handles or hands back, then properties."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lettergen import yamlio
from lettergen.errors import CaseError


def typed(value: Any) -> Any:
    """A value with its types spelled out: True == 1 in Python, but not in a case file."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def outcome(load: Any, text: str) -> Any:
    try:
        return ("ok", typed(load(text)))
    except RecursionError:
        return ("error", "RecursionError")
    except (yaml.YAMLError, ValueError) as exc:
        return ("error", type(exc).__name__, str(exc))


def slow(text: str) -> Any:
    return yaml.load(text, Loader=yamlio._StrictLoader)


DOCS = [
    ("plain mapping", "a: 1\nb: two\nc: [x, y]\n"),
    ("nested", "a:\n  b:\n    - {c: d}\n    - e\n"),
    ("empty document", ""),
    ("comment only", "# nothing\n"),
    ("scalar document", "just text"),
    ("list document", "- 1\n- 2\n"),
    ("booleans YAML 1.1", "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: False\n"),
    ("nulls", "a: ~\nb: null\nc:\nd: Null\n"),
    ("ints", "a: 12\nb: -3\nc: 0o17\nd: 0x1F\ne: 1_000\nf: 0b101\ng: 1:20\nh: 017\n"),
    ("floats", "a: 1.5\nb: .inf\nc: -.Inf\nd: .nan\ne: 1e3\nf: 6.8e+2\ng: 1:20.5\n"),
    ("dates", "a: 2026-11-21\nb: 2026-11-21T10:30:00Z\nc: 2026-11-21 10:30:00.5 +02:00\n"),
    ("impossible date stays text", "a: 2026-13-45\n"),
    ("quoted scalars stay text", "a: '12'\nb: \"yes\"\nc: '2026-11-21'\nd: '~'\n"),
    ("explicit str tag", "a: !!str 12\nb: !!str yes\n"),
    ("explicit int tag", "a: !!int '7'\n"),
    ("explicit float tag", "a: !!float '1'\n"),
    ("explicit bad int", "a: !!int seven\n"),
    ("binary", "a: !!binary aGVsbG8=\n"),
    ("block scalars", "a: |\n  line one\n  line two\nb: >\n  folded\n  text\n"),
    ("unicode", "name: Zoë Ángel\nnote: \u2264 5 cm\n"),
    ("int keys", "1: a\n2: b\n"),
    ("bool key", "yes: a\n"),
    ("null key", "~: a\n"),
    ("float key", "1.5: a\n"),
    ("date key", "2026-11-21: a\n"),
    ("duplicate key", "a: 1\na: 2\n"),
    ("duplicate int key", "1: a\n1: b\n"),
    ("list as key", "? [1, 2]\n: a\n"),
    ("mapping as key", "? {a: 1}\n: b\n"),
    ("merge key", "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n"),
    ("value key", "=: a\n"),
    ("alias of a mapping", "a: &x {k: 1}\nb: *x\n"),
    ("alias of a scalar", "a: &x 5\nb: *x\n"),
    ("recursive alias", "a: &x [1, *x]\n"),
    ("recursive mapping", "a: &x {b: *x}\n"),
    ("unknown alias", "a: *nowhere\n"),
    ("local tag", "a: !thing 1\n"),
    ("python tag", "a: !!python/object:os.system x\n"),
    ("omap", "a: !!omap [{x: 1}, {y: 2}]\n"),
    ("set", "a: !!set {x, y}\n"),
    ("seq tag on a scalar", "a: !!seq x\n"),
    ("map tag on a list", "a: !!map [1]\n"),
    ("map tag on a scalar", "a: !!map x\n"),
    ("seq tag on a mapping", "a: !!seq {x: 1}\n"),
    ("two documents", "a: 1\n---\nb: 2\n"),
    ("syntax error", "a: [1, 2\n"),
    ("tab indentation", "a:\n\t- 1\n"),
    ("deep nesting", "a: " + "[" * 60 + "]" * 60 + "\n"),
    ("very deep list", "a: " + "[" * 3000 + "]" * 3000 + "\n"),
    ("very deep mapping", "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n"),
    ("template text is data", "a: '{{ 7*7 }}'\nb: '{% raw %}'\n"),
]


@pytest.mark.parametrize(("text"), [d[1] for d in DOCS], ids=[d[0] for d in DOCS])
def test_fast_path_matches_pyyaml(text: str) -> None:
    assert outcome(yamlio._fast_load, text) == outcome(slow, text)


def test_examples_and_data_files_match() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*root.glob("examples/*.yaml"), *root.glob("criteria/*.yaml"), *root.glob("citations/*.yaml")]
    assert len(files) > 10
    for f in files:
        text = f.read_text()
        assert outcome(yamlio._fast_load, text) == outcome(slow, text), f.name


def test_an_alias_is_one_object_as_in_pyyaml() -> None:
    data = yamlio._fast_load("a: &x {k: [1]}\nb: *x\nc: [*x, *x]\n")
    assert data["a"] is data["b"] is data["c"][0] is data["c"][1]


def test_a_billion_laughs_stays_linear() -> None:
    # Nine levels of ten aliases each: a billion leaves if expanded, a few hundred nodes if shared.
    lines = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    data = yamlio._fast_load("\n".join(lines) + "\n")
    assert data["l9"][0] is data["l8"] and len(data["l9"]) == 10


def test_parse_mapping_keeps_its_messages() -> None:
    table = [
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("? [1]\n: a\n", "a mapping key must be a plain value"),
        ("a: [1\n", "is not valid YAML"),
        ("- 1\n", "must hold a mapping at the top level, not a list"),
        ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n", "is nested too deeply"),
    ]
    for text, message in table:
        with pytest.raises(CaseError, match=message.replace("[", r"\[")):
            yamlio.parse_mapping(text, "case.yaml", CaseError)
    assert yamlio.parse_mapping("d: 2026-11-21\n", "case.yaml", CaseError) == {"d": date(2026, 11, 21)}


# -- properties ---------------------------------------------------------------------------------------

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.dates(),
    st.text(max_size=20),
    st.sampled_from(["yes", "No", "~", "0o17", "1:20", "2026-13-45", ".inf", "<<", "=", "{{ x }}", "!x", "&a"]),
)
trees = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.booleans()), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from([None, False, True]))
def test_dumped_documents_match(tree: Any, flow: bool | None) -> None:
    text = yaml.safe_dump({"root": tree}, default_flow_style=flow, allow_unicode=True)
    assert outcome(yamlio._fast_load, text) == outcome(slow, text)


YAMLISH = st.text(alphabet=list("ab1:- \n[]{},'\"&*!?|>#~.0<=%@`\t"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(YAMLISH)
def test_arbitrary_text_matches(text: str) -> None:
    assert outcome(yamlio._fast_load, text) == outcome(slow, text)
