"""The wheel carries the data folders: install it in a fresh venv and run it from outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import CHORDOMA, ROOT

pytestmark = pytest.mark.slow


def test_wheel_installs_and_runs_outside_the_repo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("lettergen-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    inst = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inst.returncode == 0, inst.stderr[-2000:]
    # Dependencies come from the running environment (the tests never reach the network); lettergen itself
    # comes only from the wheel, because a path added by a .pth line does not have its own .pth files run.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    fresh_site = next((env_dir / "lib").glob("python3*/site-packages"))
    (fresh_site / "zz_test_deps.pth").write_text(site + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LETTERGEN_DATA", "PYTHONPATH")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    case = work / "case.yaml"
    case.write_text(CHORDOMA.read_text())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(py), *args], cwd=work, env=env, capture_output=True, text=True, check=False)

    proc = run("-m", "lettergen", "check", "case.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "20206  met" in proc.stdout
    proc = run("-m", "lettergen", "draft", "case.yaml", "-o", "out")
    assert proc.returncode == 0, proc.stderr
    assert (work / "out" / "chordoma-gluteal-001.lmn.md").exists()
    # the data came from the wheel, not from the checkout
    proc = run("-c", "import lettergen.knowledge.store as k; print(k.data_dir())")
    assert proc.returncode == 0, proc.stderr
    where = proc.stdout.strip()
    assert str(fresh_site) in where and "_data" in where
