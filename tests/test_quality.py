"""Lint, format and strict typing are part of the test suite, so CI enforces them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

CHECKS = [
    ["ruff", "check", "lettergen", "tests", "benchmarks"],
    ["ruff", "format", "--check", "lettergen", "tests", "benchmarks"],
    ["mypy"],
]


@pytest.mark.parametrize("cmd", CHECKS, ids=[" ".join(c[:2]) for c in CHECKS])
def test_tool_passes(cmd: list[str]) -> None:
    if importlib.util.find_spec(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", cmd[0], *cmd[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_layers_contract_holds() -> None:
    # Each stage imports only the stages before it, and nothing offline imports litellm (pyproject.toml).
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("import-linter is not installed")
    code = "import sys\nfrom importlinter.cli import lint_imports\nsys.exit(lint_imports())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
