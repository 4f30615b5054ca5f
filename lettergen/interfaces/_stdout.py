"""Standard output for every command: a write that fails is one line and exit 3, never a traceback."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from lettergen.errors import OutputError


def echo(message: str = "", *, nl: bool = True) -> None:
    """Print to standard output. A write that fails (a full disk, ``> /dev/full``, an I/O error) is an
    OutputError: exit 3 with one line, where it used to be an internal error. A reader that went away
    (BrokenPipeError) is left to :func:`handled`, which ends the command quietly with 141."""
    try:
        typer.echo(message, nl=nl)
    except BrokenPipeError:
        raise
    except OSError as exc:
        stdout_to_devnull()  # the text still buffered must not fail again when the process exits
        raise OutputError(f"standard output: cannot write ({exc.strerror or type(exc).__name__})") from None


def stdout_to_devnull() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
