"""Supply chain: the hash-pinned lock, the compromised litellm releases, and the .pth allow-list."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

COMPROMISED = {"1.82.7", "1.82.8"}
LOCK = ROOT / "requirements.lock"


def _lock_pins() -> dict[str, str]:
    pins = {}
    for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", LOCK.read_text(), re.M):
        pins[re.sub(r"[._]", "-", m.group(1).lower())] = m.group(2)
    return pins


def test_lock_pins_every_requirement_with_hashes() -> None:
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    reqs = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert len(reqs) > 20
    for b in reqs:
        assert "--hash=sha256:" in b, b.split("\n", 1)[0]


def test_lock_covers_every_extra() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _lock_pins()
    wanted = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        wanted += extra
    for req in wanted:
        name = re.sub(r"[._]", "-", re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower())
        assert name in pins, f"{name} is not in requirements.lock: regenerate it (see .ci/run)"


def test_compromised_litellm_excluded() -> None:
    pins = _lock_pins()
    assert pins.get("litellm") not in COMPROMISED
    llm = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["llm"]
    spec = next(r for r in llm if r.startswith("litellm"))
    for bad in COMPROMISED:
        assert f"!={bad}" in spec
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor and tuple(map(int, floor.group(1).split("."))) > (1, 82, 8)


def _check_pth() -> object:
    spec = importlib.util.spec_from_file_location("check_pth", ROOT / ".ci" / "check_pth.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("litellm_init.pth", True),
        ("evil.pth", True),
        ("distutils-precedence.pth", False),
        ("_editable_impl_lettergen.pth", False),
        ("__editable__.lettergen-0.1.0.pth", False),
    ],
)
def test_pth_allow_list(tmp_path: Path, name: str, flagged: bool) -> None:
    mod = _check_pth()
    (tmp_path / name).write_text("import os\n")
    assert bool(mod.offenders([tmp_path])) is flagged  # type: ignore[attr-defined]


def test_ci_installs_from_the_lock_and_runs_the_readme_command() -> None:
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert any("--require-hashes -r requirements.lock" in ln for ln in lines)
    assert any("check_pth.py" in ln for ln in lines)
    assert lines[-1] == ".venv/bin/python -m pytest -n 2"
    assert ".venv/bin/python -m pytest -n 2" in (ROOT / "README.md").read_text()
