"""``lettergen profile``: write a commented practice profile, and show which profile lettergen would use.

Kept apart from cli.py, which only adds this group and the ``--profile`` option of check, draft and batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lettergen.errors import UsageError
from lettergen.interfaces._stdout import echo
from lettergen.interfaces.conventions import App

profile_app = App(help="The practice profile: letterhead, signer and house style.", no_args_is_help=True)


F = TypeVar("F", bound=Callable[..., Any])


def _handled(fn: F) -> F:
    """cli.handled (one line on stderr and the exit code of a lettergen error), looked up when the command runs:
    cli.py imports this module."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lettergen.interfaces.cli import handled

        return handled(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@profile_app.command("init")
@_handled
def profile_init(
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write here instead of stdout.")] = None,
) -> None:
    """A commented profile to fill in (every key optional; see the README's "Practice profile")."""
    from lettergen.case.profile import TEMPLATE

    if out is None:
        echo(TEMPLATE, nl=False)
        return
    if out.exists():
        raise UsageError(f"{out}: already exists; lettergen does not overwrite a profile (remove it first)")
    from lettergen.files import write_outputs

    write_outputs({out: TEMPLATE.encode("utf-8")})  # an unwritable place is an OutputError (exit 3)
    echo(f"wrote {out}")


@profile_app.command("show")
@_handled
def profile_show(
    profile: Annotated[Path | None, typer.Option("--profile", help="This profile instead of the usual one.")] = None,
) -> None:
    """Which profile lettergen uses (--profile, LETTERGEN_PROFILE, the config folder), and what it sets."""
    from lettergen.case.profile import default_path, find_profile, load_profile

    path = find_profile(profile)
    if path is None:
        echo(f"no profile (looked for --profile, LETTERGEN_PROFILE and {default_path()})")
        return
    found = load_profile(path)
    echo(f"profile {found.file}")
    echo(f"  sha256 {found.sha256}")
    for key, value in found.provider.items():
        echo(f"  provider.{key} = {value}")
    echo(f"  letter.date_style = {found.date_style or '(as the case says, else us)'}")
    echo(f"  letter.references = {found.references}")
    for name, image in (("logo", found.logo), ("signature", found.signature)):
        if image is not None:
            echo(f"  {name}: {image.mime}, {len(image.data)} bytes, sha256 {image.sha256}")
