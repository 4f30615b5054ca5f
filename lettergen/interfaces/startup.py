"""What the command line does before it parses its arguments; each step is about privacy or start-up time.

- Pydantic plugins are off unless the user has chosen otherwise (:func:`plugins_off`).
- Only the command being run is built (:func:`app_for`).
- A command that does one thing and exits runs without the cyclic garbage collector (:func:`collector_for`).

``lettergen check`` is meant to start almost as fast as importing its libraries (benchmarks/run.py measures
the ratio).
"""

from __future__ import annotations

import copy
import gc
import os

import typer


def plugins_off() -> None:
    """Run without pydantic plugins unless the user has set ``PYDANTIC_DISABLE_PLUGINS`` themselves.

    A plugin (an observability hook, for instance) is shown the input of every validation, which here
    is patient data."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def app_for(app: typer.Typer, argv: list[str]) -> typer.Typer:
    """``app`` with only the command (or command group) named in ``argv``; ``app`` itself for anything else.

    Typer builds the parameters of every command of an app before it runs one, evaluating each
    annotation; lettergen has a dozen commands, and ``check`` needs one. Help, errors and an unknown
    command go to the whole app, so that they list every command; so do the app's own options (``--version``,
    ``--install-completion``, ``--show-completion``) and shell completion, whose script runs the program with
    no arguments and the words to complete in the environment.
    """
    name = argv[1] if len(argv) > 1 else ""
    if not name or name.startswith("-"):
        return app
    commands = [c for c in app.registered_commands if _name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    # A copy keeps every setting of the app (pretty exceptions off: they would print locals, patient data).
    one = copy.copy(app)
    one.registered_commands = commands
    one.registered_groups = groups
    # A callback keeps the app a group, so that the command's name is still read from the command line.
    one.callback()(_no_options)
    return one


# Commands that do one thing and exit. The collector would spend part of ``check``'s start-up tracing the
# objects of every import and model class, and a process that exits frees everything anyway. The long runs
# (batch, serve, eval) keep it: their garbage must not pile up.
ONE_SHOT = frozenset({"check", "draft", "validate", "citations", "criteria", "codes", "init"})


def collector_for(argv: list[str]) -> None:
    """Turn the cyclic garbage collector off for a one-shot command (:data:`ONE_SHOT`)."""
    if len(argv) > 1 and argv[1] in ONE_SHOT:
        gc.disable()


def _no_options() -> None:
    """The app's own callback: it takes no options of its own."""


def _name(info: typer.models.CommandInfo) -> str:
    if info.name:
        return info.name
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback is not None else ""
