"""How every lettergen command presents itself on the command line.

* ``-h`` works beside ``--help`` (:data:`CONTEXT`).
* A flag shows no type in help (Typer would write ``<bool>`` beside it); an option with a fixed set of values
  lists them in brackets, ``[lmn|appeal|...]``.
* The usage line names an argument as its metavar, ``CASE`` or ``[CASE]``, not ``{case}``.

:class:`App` is a ``typer.Typer`` whose commands and command groups get these classes without each command
naming them, so that a command added later follows the same conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
F = TypeVar("F", bound=Callable[..., Any])


def _tidy(command: Any, ctx: Any) -> None:
    """Set the metavars help shows (once per parameter: a metavar set here or by the command stays)."""
    for param in command.get_params(ctx):
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
            continue
        shown = param.display_type(ctx)  # "<md|txt|html>" for a choice, "<str>" for text
        if "|" in shown and shown.startswith("<") and shown.endswith(">") and "[" not in shown:
            param.metavar = _choices(shown[1:-1].split("|"))


def _choices(values: list[str], width: int = 16) -> str:
    """``[a|b|c]``, broken after a ``|`` into lines of at most ``width`` characters (where one value allows), so
    that an 80-column help keeps each value whole instead of folding it."""
    lines = [""]
    for i, value in enumerate(values):
        piece = ("[" if i == 0 else "") + value + ("]" if i == len(values) - 1 else "|")
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _usage(command: Any, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            pieces += param.get_usage_pieces(ctx)
            continue
        name = (param.metavar or param.name or "").upper()
        name = name if param.required else f"[{name}]"
        pieces.append(name + ("..." if param.nargs != 1 else ""))
    return pieces


class Command(TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self, ctx)
        super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage(self, ctx)


class Group(TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self, ctx)
        super().format_help(ctx, formatter)


class App(typer.Typer):
    """A Typer app whose commands and groups follow lettergen's conventions (see the module's docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("context_settings", CONTEXT)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", Command)
        decorator: Callable[[F], F] = super().command(*args, **kwargs)
        return decorator
