"""Reading a case or data file's YAML (yamlio.parse_mapping): every document gives a mapping or one CaseError,
never another exception; what PyYAML's safe loader reads, it reads the same, except where it is stricter on
purpose (duplicate keys, a value its tag does not fit, numbers past a length, an impossible date kept as text).
Table rows for each kind of node, then properties."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lettergen import yamlio
from lettergen.errors import CaseError


def typed(value: Any, depth: int = 0) -> Any:
    """A value with its types spelled out: True == 1 in Python, but not in a case file. A document whose
    alias holds itself (``a: &x [1, *x]``) reads as a recursive list, PyYAML's too: spelled ``recursive``."""
    if depth > 200:
        return "recursive"
    if isinstance(value, dict):
        return ("dict", [(typed(k, depth + 1), typed(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v, depth + 1) for v in value])
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


def parse(text: str) -> Any:
    """parse_mapping's answer: the mapping, or the CaseError's message (never another exception)."""
    try:
        return ("ok", typed(yamlio.parse_mapping(text, "case.yaml", CaseError)))
    except CaseError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("case.yaml: ")
        return ("error", message)


def safe(text: str) -> Any:
    """PyYAML's own safe loader's answer, for comparison."""
    try:
        data = yaml.safe_load(text)
    except Exception as exc:
        return ("error", type(exc).__name__)
    return ("ok", typed(data)) if isinstance(data, dict) else ("not a mapping",)


# Where lettergen reads differently from yaml.safe_load, on purpose.
STRICTER = {
    "duplicate key",
    "duplicate int key",
    "impossible date stays text",
    "explicit bad int",
    "very deep list",
    "very deep mapping",
    "merge key",
    "value key",
    "recursive mapping",
}


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


@pytest.mark.parametrize(("name", "text"), DOCS, ids=[d[0] for d in DOCS])
def test_every_document_is_a_mapping_or_one_case_error(name: str, text: str) -> None:
    got = parse(text)
    expected = safe(text)
    if name in STRICTER:
        return  # parse() already held it to a mapping or one CaseError
    if got[0] == "ok":
        assert got == expected
    else:  # refused: PyYAML refuses it too, or it is no mapping
        assert expected[0] != "ok"


def test_examples_and_data_files_read_as_pyyaml_reads_them() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*root.glob("examples/*.yaml"), *root.glob("criteria/*.yaml"), *root.glob("citations/*.yaml")]
    assert len(files) > 10
    for f in files:
        text = f.read_text()
        assert parse(text) == safe(text), f.name


def test_a_billion_laughs_stays_linear() -> None:
    # Nine levels of ten aliases each: a billion leaves if expanded, a few hundred nodes if shared.
    lines = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    data = yamlio.parse_mapping("\n".join(lines) + "\n", "case.yaml", CaseError)
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
def test_dumped_documents_read_back(tree: Any, flow: bool | None) -> None:
    text = yaml.safe_dump({"root": tree}, default_flow_style=flow, allow_unicode=True)
    assert parse(text) == safe(text)


YAMLISH = st.text(alphabet=list("ab1:- \n[]{},'\"&*!?|>#~.0<=%@`\t"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(YAMLISH)
def test_arbitrary_text_is_a_mapping_or_one_case_error(text: str) -> None:
    parse(text)
