"""The knowledge base's local data: ``kb import-ncci`` and ``kb ncci-files``. Registered on the app by
:func:`register` (cli.py), so that they stay apart from the rest.

Exit codes as the rest of the CLI: 0 done; 2 bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from lettergen.interfaces._stdout import echo

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db", help="The NCCI database (default: $XDG_DATA_HOME/lettergen/ncci.sqlite, or LETTERGEN_NCCI_DB)."
    ),
]


def _echo_json(obj: Any) -> None:
    echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def register(app: typer.Typer, criteria_app: typer.Typer, handled: Callable[[Any], Any]) -> None:
    """Add the ``kb`` group to ``app``, each command wrapped in the CLI's error handling (``handled``)."""
    kb_app = typer.Typer(help="Local data: the CMS NCCI tables an office imports.", no_args_is_help=True)
    kb_app.command("import-ncci")(handled(import_ncci))
    kb_app.command("ncci-files")(handled(ncci_files))
    app.add_typer(kb_app, name="kb")


def import_ncci(
    files: Annotated[list[Path], typer.Argument(help="CMS NCCI PTP edit files (.txt) and MUE tables (.csv, .txt).")],
    db: DbOpt = None,
) -> None:
    """Import CMS NCCI procedure-to-procedure edits and MUE tables into the local database: all files or none."""
    from lettergen.knowledge.ncci import default_db_path, import_files

    path = db or default_db_path()
    for result in import_files(path, files):
        f = result.file
        what = "PTP edits" if f.kind == "ptp" else "MUE values"
        where = "in its name" if f.stated_in == "file name" else f"on its {f.stated_in}"
        said = f"{f.version} (stated {where})" if f.version else "no version stated: cited by name and sha256"
        verb = "imported" if result.new else "already imported"
        setting = f.setting or "setting not stated"
        echo(f"{verb}: {f.name}: {f.rows} {what}, {setting}, {said}; sha256 {f.sha256}")
    echo(f"database: {path}")


def ncci_files(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List the CMS files imported into the NCCI database."""
    from dataclasses import asdict

    from lettergen.knowledge.ncci import default_db_path, open_db

    path = db or default_db_path()
    opened = open_db(path)
    files = [] if opened is None else opened.files()
    if opened is not None:
        opened.close()
    if as_json:
        _echo_json({"database": str(path), "files": [asdict(f) for f in files]})
        return
    if not files:
        echo(f"no NCCI table imported at {path}")
    for f in files:
        echo(f"{f.kind:<4} {f.setting or '-':<20} {f.version or '-':<22} {f.rows:>9} {f.name}  {f.sha256[:12]}")
