"""What the command line does before it parses its arguments (lettergen.interfaces.startup)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHORDOMA
from test_reliability import spy_site
from typer.testing import CliRunner

from lettergen.interfaces.cli import app
from lettergen.interfaces.startup import ONE_SHOT, app_for, collector_for

ARGS = [
    ["check", str(CHORDOMA)],
    ["check", str(CHORDOMA), "--json"],
    ["check"],
    ["check", "--help"],
    ["check", "--nope"],
    ["draft", "--help"],
    ["citations", "list"],
    ["citations"],
    ["criteria", "show", "20206"],
    ["codes", "show", "99999"],
    ["eval", "--help"],
    ["init", "--code", "20206", "--case-id", "x"],  # a fresh case id is random
    [],
    ["--help"],
    ["nope"],
    ["checkx"],
]


@pytest.mark.parametrize("args", ARGS, ids=[" ".join(a) or "(none)" for a in ARGS])
def test_the_one_command_app_behaves_as_the_whole_app(args: list[str]) -> None:
    runner = CliRunner()
    whole = runner.invoke(app, args, prog_name="lettergen")
    one = runner.invoke(app_for(app, ["lettergen", *args]), args, prog_name="lettergen")
    assert (one.exit_code, one.stdout, one.stderr) == (whole.exit_code, whole.stdout, whole.stderr)


@pytest.mark.parametrize(
    ("argv", "commands", "groups"),
    [
        (["check", "x.yaml"], ["check"], []),
        (["citations", "list"], [], ["citations"]),
        (["--help"], None, None),
        ([], None, None),
        (["nope"], None, None),
    ],
)
def test_app_for_builds_only_the_named_command(
    argv: list[str], commands: list[str] | None, groups: list[str] | None
) -> None:
    callback = app.registered_callback  # the app's own (--version), which building a command leaves alone
    built = app_for(app, ["lettergen", *argv])
    if commands is None:
        assert built is app
        return
    assert [c.callback.__name__ for c in built.registered_commands if c.callback] == commands
    assert [g.name for g in built.registered_groups] == groups
    assert built.pretty_exceptions_enable is False  # the app's settings come along: no locals printed
    assert app.registered_callback is callback and len(app.registered_commands) > len(built.registered_commands)


@pytest.mark.parametrize(
    ("argv", "collects"),
    [(["check", "x"], False), (["draft", "x"], False), (["batch", "x"], True), (["serve"], True), ([], True)],
)
def test_one_shot_commands_run_without_the_cyclic_collector(argv: list[str], collects: bool) -> None:
    assert gc.isenabled()
    try:
        collector_for(["lettergen", *argv])
        assert gc.isenabled() is collects
    finally:
        gc.enable()
    assert {"batch", "serve", "eval"}.isdisjoint(ONE_SHOT)


PLUGINS_OFF = f"""
from lettergen.interfaces.startup import plugins_off
plugins_off()
from lettergen.api import check, load_case
check(load_case({str(CHORDOMA)!r}).case)
"""


def test_no_pydantic_plugin_sees_patient_data_unless_the_user_turns_plugins_on(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = f"{spy_site(tmp_path)}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["LG_SPY_OUT"] = str(tmp_path / "seen.txt")
    proc = subprocess.run([sys.executable, "-c", PLUGINS_OFF], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "seen.txt").exists()  # the case was checked while plugins were off
    env["PYDANTIC_DISABLE_PLUGINS"] = ""  # the user's choice stands: the plugin is loaded and sees validations
    proc = subprocess.run([sys.executable, "-c", PLUGINS_OFF], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "seen.txt").exists()
