"""Property-based: mutated cases never let a traceback escape, only documented errors."""

from __future__ import annotations

import contextlib
from typing import Any

import yaml
from conftest import CHORDOMA, set_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettergen import api
from lettergen.errors import LettergenError
from lettergen.knowledge.store import load_kb

BASE: dict[str, Any] = yaml.safe_load(CHORDOMA.read_text())
KB = load_kb()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.dates().map(str),
    st.sampled_from(["C41.4", "20206", "1234567893", "{{ 7*7 }}", "", "../x", "\x00"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = paths(BASE)


def apply(data: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    result: dict[str, Any] = set_path(data, path, value, delete)
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), values, st.booleans()), min_size=1, max_size=3))
def test_mutated_case_only_documented_errors(mutations: list[tuple[tuple[Any, ...], Any, bool]]) -> None:
    data = BASE
    for path, value, delete in mutations:
        try:
            data = apply(data, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the parent
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    try:
        loaded = api.load_case("mutated.yaml", kb=KB, text=text)
        api.draft(loaded, kb=KB)
    except LettergenError as exc:
        # One line, or one a problem for a case with several (CaseError.lines), each naming the file.
        assert exc.lines() and str(exc) == "\n".join(exc.lines())
        assert all(line and "\n" not in line for line in exc.lines())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_only_documented_errors(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    with contextlib.suppress(LettergenError):
        api.load_case("fuzz.yaml", kb=KB, text=text)
