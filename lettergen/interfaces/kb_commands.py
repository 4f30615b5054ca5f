"""The policy analyst's commands: ``kb import-ncci``, ``kb ncci-files``, ``kb lint``, ``schema export`` and
``criteria test``. Registered on the app by :func:`register` (cli.py), so that they stay apart from the rest.

Exit codes as the rest of the CLI: 0 done; 1 problems found (lint errors, a fixture that fails); 2 bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from lettergen.errors import UsageError
from lettergen.interfaces._stdout import echo
from lettergen.interfaces.conventions import App

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
    """Add the ``kb`` and ``schema`` groups to ``app`` and ``test`` to ``criteria_app``, each wrapped in the CLI's
    error handling (``handled``)."""
    kb_app = App(help="Authoring and local data: NCCI tables, the knowledge base's lint.", no_args_is_help=True)
    kb_app.command("import-ncci")(handled(import_ncci))
    kb_app.command("ncci-files")(handled(ncci_files))
    kb_app.command("lint")(handled(lint))
    app.add_typer(kb_app, name="kb")
    schema_app = App(help="JSON Schema of the case, criteria and citation files.", no_args_is_help=True)
    schema_app.command("export")(handled(schema_export))
    app.add_typer(schema_app, name="schema")
    criteria_app.command("test")(handled(criteria_test))


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


def lint(
    today: Annotated[
        str | None, typer.Option("--today", help="Date to check review dates against (YYYY-MM-DD).")
    ] = None,
    examples: Annotated[
        Path | None, typer.Option("--examples", help="Example cases to draft (default: the data folder's examples/).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every problem of the knowledge base at once: schema errors with file and line, unknown citations, unused
    questions and fields, past review dates, and every template drafted for every example; exit 1 on errors."""
    from datetime import date

    from lettergen.evals import kb_lint

    try:
        day = date.fromisoformat(today) if today else date.today()
    except ValueError:
        raise UsageError(f"--today: '{today}' is not a date (YYYY-MM-DD)") from None
    report = kb_lint.run(today=day, examples=examples)
    if as_json:
        _echo_json(report.as_dict())
    else:
        echo(report.text())
    if report.errors:
        raise typer.Exit(1)


def schema_export(out: Annotated[Path, typer.Argument(help="Folder to write the JSON Schema files into.")]) -> None:
    """Write JSON Schema for case, criteria and citation files (for an editor's completion and checks)."""
    from lettergen.case.schemas import schemas
    from lettergen.files import write_outputs

    files = {out / name: (json.dumps(schema, indent=2) + "\n").encode("utf-8") for name, schema in schemas().items()}
    write_outputs(files)
    for path in files:
        echo(f"wrote {path}")


def criteria_test(
    code: Annotated[str | None, typer.Argument(help="Only the fixtures that expect a verdict for this code.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the per-policy fixtures (criteria/tests/<policy-id>.yaml: facts -> expected verdicts); exit 1 when one
    fails."""
    from lettergen.evals import criteria_fixtures

    results = criteria_fixtures.run(code)
    if as_json:
        _echo_json(
            {
                "passed": sum(r.ok for r in results),
                "total": len(results),
                "results": [r.as_dict() for r in results],
            }
        )
    else:
        echo(criteria_fixtures.report(results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)
