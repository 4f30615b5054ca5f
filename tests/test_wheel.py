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
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # Install the wheel's dependencies from the running environment's site-packages (no network).
    site = next(p for p in sys.path if p.endswith("site-packages"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(tmp_path / "site"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{site}"}
    env.pop("LETTERGEN_DATA", None)
    work = tmp_path / "elsewhere"
    work.mkdir()
    case = work / "case.yaml"
    case.write_text(CHORDOMA.read_text())
    proc = subprocess.run(
        [str(py), "-m", "lettergen", "check", "case.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "20206  met" in proc.stdout
    proc = subprocess.run(
        [str(py), "-m", "lettergen", "draft", "case.yaml", "-o", "out"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (work / "out" / "chordoma-gluteal-001.lmn.md").exists()
    # the data came from the wheel, not from the checkout
    where = subprocess.run(
        [str(py), "-c", "import lettergen.kb as k; print(k.data_dir())"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(tmp_path / "site") in where and "_data" in where
