"""A table of several hundred distinct bad inputs, generated systematically: every field of the example case
times several bad values, every mapping with an unknown key, every required key deleted. Each gives exit 2,
one line on stderr naming the file, no traceback, and never the bad value itself."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CHORDOMA, run_cli, set_path

BASE: dict[str, Any] = yaml.safe_load(CHORDOMA.read_text())
BAD_VALUES: list[tuple[str, Any]] = [
    ("list", [1, 2]),
    ("mapping", {"k": 1}),
    ("too-long", "x" * 5000),
    ("control-char", "bad\x07value"),
    ("empty", ""),
    # issue 21: a C1 control, a bidi override, a bidi isolate and a line separator, refused in every field
    ("c1-control", "bad\x9bvalue"),
    ("bidi-override", "bad\u202evalue"),
    ("bidi-isolate", "bad\u2066value"),
    ("line-separator", "bad\u2028value"),
]
REQUIRED = [("case_id",), ("patient",), ("payer",), ("provider",), ("diagnoses",), ("services",)]
REQUIRED += [("patient", "name"), ("patient", "birth_date"), ("payer", "name"), ("payer", "plan_type")]
REQUIRED += [("provider", "name"), ("provider", "npi"), ("diagnoses", 0, "code"), ("services", 0, "code")]


def _nodes(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _nodes(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, (*prefix, i))


def _set(path: tuple[Any, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = set_path(BASE, path, value, delete)
    return result


def _name(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "<top>"


def _cases() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for path, node in _nodes(BASE):
        if path and not isinstance(node, dict | list):
            out += [(f"{_name(path)}={label}", _set(path, value)) for label, value in BAD_VALUES]
        if isinstance(node, dict) and not (path and path[0] == "facts" and len(path) == 1):
            extra = copy.deepcopy(BASE)
            target: Any = extra
            for k in path:
                target = target[k]
            target["zz_unknown_key"] = 1
            out.append((f"{_name(path)}+unknown-key", extra))
    out += [(f"{_name(p)}-deleted", _set(p, None, delete=True)) for p in REQUIRED]
    return out


CASES = _cases()


def test_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 200
    assert len({name for name, _ in CASES}) == len(CASES)
    assert len({yaml.safe_dump(d, sort_keys=True) for _, d in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "data"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exit_2_one_line(tmp_path: Path, name: str, data: dict[str, Any]) -> None:
    f = tmp_path / "case.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, stdout, stderr = run_cli("check", str(f))
    assert code == 2, (name, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lettergen: {f}"), stderr
    assert "Traceback" not in stderr and not [v for _, v in BAD_VALUES if isinstance(v, str) and v and v in stderr]
    assert "x" * 100 not in stderr  # no value is echoed, an unknown payer policy set neither (issue 21)
