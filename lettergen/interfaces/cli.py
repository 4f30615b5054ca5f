"""The command line: parse arguments, call the library, map errors to exit codes. Nothing else.

Exit codes: 0 done; 1 the letter (or the citation store) failed validation; 2 bad input or usage;
3 environment (missing extra, unwritable output or standard output, unreachable model); 141 the reader of
standard output went away.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from lettergen.errors import LettergenError, OutputError, UsageError, one_line
from lettergen.interfaces._stdout import echo, stdout_to_devnull
from lettergen.interfaces.conventions import App
from lettergen.interfaces.profile_cli import profile_app

# App: -h beside --help, no <bool> beside a flag, choices listed in help (lettergen.interfaces.conventions).
app = App(
    help="Medical-necessity decisions and cited letters, offline by default.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (startup.app_for keeps the whole app for them)
    pretty_exceptions_enable=False,  # never print locals: they may hold patient data
)
citations_app = App(help="The citation store.", no_args_is_help=True)
criteria_app = App(help="Criteria files.", no_args_is_help=True)
codes_app = App(help="Code reference cards.", no_args_is_help=True)
app.add_typer(citations_app, name="citations")
app.add_typer(criteria_app, name="criteria")
app.add_typer(codes_app, name="codes")
eval_app = App(help="Evaluations: the clinical vignettes, the polish guard and the edit check.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(profile_app, name="profile")


def _print_version(value: bool) -> None:
    if value:
        from lettergen import __version__

        echo(f"lettergen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    """The options of lettergen itself (a command's own come after its name)."""


F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ProfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        help="Practice profile (TOML): letterhead, signer, house style. Default: LETTERGEN_PROFILE, else "
        "profile.toml in lettergen's config folder (see the README). The case's provider block overrides it.",
    ),
]


def _profile(path: Path | None) -> Any:
    """The practice profile in use (lettergen.case.profile.resolve_profile), or None."""
    from lettergen.case.profile import resolve_profile

    return resolve_profile(path)


def _fail(message: str | list[str], code: int) -> typer.Exit:
    for line in [message] if isinstance(message, str) else message:  # several: a case's problems, one a line
        typer.echo(f"lettergen: {one_line(line)}", err=True)  # one line, whatever a file name holds
    return typer.Exit(code)


def handled(fn: F) -> F:
    """Turn lettergen errors into one line on stderr and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LettergenError as exc:
            raise _fail(exc.lines(), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as Unix tools do
            stdout_to_devnull()  # so exit's flush cannot fail again
            raise typer.Exit(141) from None  # 128 + SIGPIPE, what a shell reports for a tool killed by it
        except Exception as exc:  # a bug: say so without a traceback that could carry case data
            if os.environ.get("LETTERGEN_DEBUG"):
                raise
            raise _fail(f"internal error ({type(exc).__name__}); rerun with LETTERGEN_DEBUG=1 to see it", 1) from None

    return wrapper  # type: ignore[return-value]


def _echo_json(obj: Any) -> None:
    echo(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str))


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date: '{value}' is not a date (YYYY-MM-DD)") from None


# The choices of --type, --format and --voice: Typer lists them in help and refuses any other value (exit 2).
# They are lettergen.letter.render.LETTER_TYPES and the keys of lettergen.api.EXTENSIONS (tests/test_cli.py
# holds them equal), written out here so that parsing the command line imports neither.
LetterTypeName = Literal["lmn", "appeal", "external_review", "peer_to_peer", "determination"]
FormatName = Literal["md", "txt", "html", "pdf", "docx", "fhir"]
VoiceName = Literal["physician", "patient"]

# The polish options of draft and batch. The bound on one letter's wait is lettergen.polish.polisher.wait_bound.
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds one model request may take (--polish); a request that times out or meets a transient "
        "error (429, 5xx) is tried again, at most 4 times in all, within --max-wait.",
    ),
]
MaxWaitOpt = Annotated[
    float,
    typer.Option(
        "--max-wait",
        help="Seconds one letter may wait for the model in all (--polish): its requests, retries and backoff "
        "together; past it the letter keeps its template wording. Time queued behind other letters' requests "
        "in a batch is not counted.",
    ),
]


def _polisher(polish: bool, model: str | None, api_base: str | None, timeout: float, max_wait: float) -> Any:
    """The guarded polisher for --polish --model, or None offline (litellm is imported only here)."""
    if not (polish or model):
        return None
    if not (polish and model):
        raise UsageError("--polish and --model go together")
    for flag, value in (("--timeout", timeout), ("--max-wait", max_wait)):
        if not value > 0:  # not NaN either
            raise UsageError(f"{flag}: must be a number of seconds above 0, not {value:g}")
    from lettergen.polish.polisher import make_polisher

    return make_polisher(model=model, api_base=api_base, timeout=timeout, max_wait=max_wait)


@app.command()
@handled
def check(
    case: Annotated[Path, typer.Argument(help="Case file: YAML, JSON or FHIR R4 Bundle.")],
    as_json: JsonOpt = False,
    db: Annotated[
        Path | None, typer.Option("--db", help="NCCI database ('kb import-ncci'; default: data folder).")
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Decide every requested code: met, not_met or insufficient (with the missing facts); with an imported NCCI
    database, its PTP conflicts and units above an MUE too."""
    from lettergen import api
    from lettergen.interfaces import views

    if db is not None and not db.is_file():
        raise UsageError(f"--db: {db} is not a file (import CMS NCCI tables with 'lettergen kb import-ncci')")
    loaded = api.load_case(case, profile=_profile(profile))
    decision = api.check(loaded.case)
    ncci = api.check_ncci(loaded.case, db)
    if as_json:
        out = decision.model_dump(mode="json")
        _echo_json(out if ncci is None else {**out, "ncci": ncci.model_dump(mode="json")})
    else:
        echo(views.decision_text(decision, ncci))


@app.command()
@handled
def draft(
    case: Annotated[Path, typer.Argument(help="Case file: YAML, JSON or FHIR R4 Bundle.")],
    letter_type: Annotated[
        LetterTypeName | None, typer.Option("--type", help="Letter type (default: the case's letter.type).")
    ] = None,
    fmt: Annotated[FormatName, typer.Option("--format", help="Output format.")] = "md",
    out: Annotated[Path, typer.Option("-o", "--out", help="Output directory.")] = Path("."),
    on: Annotated[
        str | None, typer.Option("--date", help="Letter date, YYYY-MM-DD (default: the case's, else today).")
    ] = None,
    polish: Annotated[bool, typer.Option("--polish", help="Polish wording with a model (guarded).")] = False,
    model: Annotated[str | None, typer.Option("--model", help="litellm model name for --polish.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="OpenAI-compatible server URL.")] = None,
    timeout: TimeoutOpt = 60.0,
    max_wait: MaxWaitOpt = 120.0,
    voice: Annotated[
        VoiceName,
        typer.Option("--voice", help="Who speaks: patient is for an appeal or external_review only."),
    ] = "physician",
    redact_ledger: Annotated[
        bool, typer.Option("--redact-ledger", help="Hashes in place of patient identifiers in the ledger.")
    ] = False,
    profile: ProfileOpt = None,
    cover: Annotated[
        bool, typer.Option("--cover", help="A fax cover page in front of the letter (--format pdf).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the paths written, verdicts, validation and polish status as JSON."),
    ] = False,
) -> None:
    """Draft a cited letter and its provenance ledger into DIR."""
    from lettergen import api

    letter_date = _parse_date(on)
    api.check_format(fmt)  # before the model and the case: a bad flag is named first
    polisher = _polisher(polish, model, api_base, timeout, max_wait)
    practice = _profile(profile)
    loaded = api.load_case(case, profile=practice)
    result = api.draft(
        loaded,
        letter_type=letter_type,
        fmt=fmt,
        letter_date=letter_date,
        polish=polisher,
        voice=voice,
        redact_ledger=redact_ledger,
        ncci=api.check_ncci(loaded.case, letter_date=letter_date),  # the staff note's NCCI edits, if imported
        profile=practice,
        cover=cover,
    )
    replaced = result.replaces(out)
    letter_path, ledger_path = result.write(out)
    notes_path = out / result.notes_filename()
    polish_status = result.ledger.polish.status
    if as_json:
        _echo_json(_draft_json(result, (letter_path, ledger_path, notes_path), replaced))
    else:
        echo(f"wrote {letter_path}")
        echo(f"wrote {ledger_path}")
        echo(f"wrote {notes_path}")
    typer.echo(result.notes, err=True, nl=False)
    if replaced:
        typer.echo(f"note: {ledger_path.name} was {replaced}'s ledger; that letter cannot be validated now", err=True)
    if polish_status not in ("not requested", "ok"):
        typer.echo(f"polish: {polish_status}", err=True)


def _draft_json(result: Any, paths: tuple[Path, Path, Path], replaced: str | None) -> dict[str, Any]:
    """What ``draft --json`` prints (the keys are documented in the README)."""
    validation = result.validation
    return {
        "case_id": result.case.case_id,
        "letter_type": result.letter.type,
        "format": result.ledger.format,
        "letter": str(paths[0]),
        "ledger": str(paths[1]),
        "notes": str(paths[2]),
        "verdicts": {s.code: s.verdict for s in result.decision.services},
        "validation": {
            "ok": validation.ok,
            "checked": validation.checked,
            "issues": [i.model_dump(mode="json") for i in validation.issues],
        },
        "polish": result.ledger.polish.status,
        "replaced_ledger_of": replaced,
    }


@app.command()
@handled
def validate(
    letter: Annotated[Path, typer.Argument(help="The letter, possibly edited.")],
    ledger: Annotated[Path, typer.Option("--ledger", help="The ledger written with the letter.")],
    as_json: JsonOpt = False,
) -> None:
    """Re-check a letter against its ledger; exit 1 when an edit broke a claim."""
    from lettergen import api

    result = api.validate_file(letter, ledger)
    if as_json:
        _echo_json(result.model_dump(mode="json"))
    else:
        for i in result.issues:
            where = f" [{i.sentence}]" if i.sentence else ""
            echo(f"{i.level}: rule {i.rule}{where}: {i.message}")
        echo(f"{'ok' if result.ok else 'FAILED'}: {result.checked} sentences checked, {len(result.errors)} errors")
    if not result.ok:
        raise typer.Exit(1)


@citations_app.command("list")
@handled
def citations_list(as_json: JsonOpt = False) -> None:
    """List the sources in the citation store."""
    from lettergen.knowledge.store import load_kb

    kb = load_kb()
    if as_json:
        _echo_json(
            [
                {
                    "id": s.id,
                    "type": s.type,
                    "tier": s.tier,
                    "title": s.title,
                    "year": s.year,
                    "doi": s.doi,
                    "pmid": s.pmid,
                    "url": s.url,
                    "findings": [f.id for f in s.findings],
                }
                for s in kb.sources.values()
            ]
        )
        return
    for s in kb.sources.values():
        echo(f"{s.id:<40} {s.tier:<14} {s.type:<22} {s.year or '':<5} {s.title}")


@citations_app.command("show")
@handled
def citations_show(
    ident: Annotated[str, typer.Argument(help="source id or source.finding")], as_json: JsonOpt = False
) -> None:
    """Show a source with its findings, or one finding."""
    from lettergen.interfaces import views
    from lettergen.knowledge.store import load_kb

    kb = load_kb()
    src_id, _, fid = ident.partition(".")
    src = kb.sources.get(src_id)
    if src is None or (fid and src.finding(fid) is None):
        raise UsageError(f"citations show: unknown citation '{ident}'")
    finding = src.finding(fid) if fid else None
    if as_json:
        _echo_json({"source": src.id, **finding.model_dump(mode="json")} if finding else src.model_dump(mode="json"))
        return
    echo(views.source_text(src.model_copy(update={"findings": (finding,)}) if finding else src))


@citations_app.command("check")
@handled
def citations_check(as_json: JsonOpt = False) -> None:
    """Check the store's integrity: errors fail (exit 1), warnings are listed."""
    from lettergen import api

    issues = api.check_knowledge()
    errors = [i for i in issues if i.level == "error"]
    if as_json:
        _echo_json({"ok": not errors, "issues": [i.model_dump() for i in issues]})
    else:
        for i in issues:
            echo(f"{i.level}: {i.where}: {i.problem}")
        echo(f"{'ok' if not errors else 'FAILED'}: {len(errors)} errors, {len(issues) - len(errors)} warnings")
    if errors:
        raise typer.Exit(1)


@criteria_app.command("list")
@handled
def criteria_list(as_json: JsonOpt = False) -> None:
    """List criteria files (policies) and the codes they cover."""
    from lettergen.knowledge.store import load_kb

    kb = load_kb()
    rows = [p.summary() for p in kb.policies.values()]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        echo(f"{r['id']:<34} {r['set']:<22} {','.join(r['codes']):<24} {r['title']}")


def _policy(code: str, policy_set: str | None) -> Any:
    from lettergen.case.codes import normalize_service_code
    from lettergen.knowledge.store import load_kb

    kb = load_kb()
    code = normalize_service_code(code)
    if policy_set and policy_set not in kb.policy_sets():
        raise UsageError(f"--policy: unknown policy set '{policy_set}'")
    pol = kb.policy_for(code, policy_set)
    if pol is None:
        raise UsageError(f"no criteria on file for {code} (see 'lettergen criteria list')")
    return kb, code, pol


@criteria_app.command("show")
@handled
def criteria_show(
    code: str,
    policy_set: Annotated[
        str | None, typer.Option("--policy", help="Payer policy set (default criteria otherwise).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the rules for CODE with the findings each cites."""
    from lettergen.interfaces import views

    kb, _, pol = _policy(code, policy_set)
    if as_json:
        _echo_json(pol.model_dump(mode="json", by_alias=True, exclude_none=True))
    else:
        echo(views.policy_text(pol, kb))


@codes_app.command("show")
@handled
def codes_show(code: str, as_json: JsonOpt = False) -> None:
    """The code card: plain label, coverage, when not to use, bundling, checklist, sources."""
    from lettergen.interfaces import views

    kb, code, pol = _policy(code, None)
    if as_json:
        _echo_json(
            {
                "code": code,
                "label": pol.label(code),
                "policy": pol.ref,
                "family": pol.family,
                "card": pol.card.model_dump(mode="json") if pol.card else None,
                "bundles": [b.model_dump(mode="json") for b in pol.bundles],
                "checklist": list(pol.checklist),
            }
        )
    else:
        echo(views.card_text(code, pol, kb))


@app.command()
@handled
def init(
    code: Annotated[list[str], typer.Option("--code", help="Service code; repeat for several.")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write here instead of stdout.")] = None,
    fmt: Annotated[
        Literal["yaml", "fhir"], typer.Option("--format", help="A case file, or a FHIR Questionnaire.")
    ] = "yaml",
    appeal: Annotated[bool, typer.Option("--appeal", help="Add the denial block an appeal answers.")] = False,
    case_id: Annotated[
        str | None, typer.Option("--case-id", help="The case's id (default: today's date and a random suffix).")
    ] = None,
    payer_policy: Annotated[
        str | None,
        typer.Option("--payer-policy", help="A payer's policy set: its questions, and payer.policy set to it."),
    ] = None,
    table: Annotated[
        bool, typer.Option("--csv", help="Write the header row of a table of cases for 'batch --csv'.")
    ] = False,
) -> None:
    """A case skeleton with every question the named codes need."""
    from lettergen.interfaces import skeleton

    if table and fmt != "yaml":
        raise UsageError("--csv and --format fhir do not go together")
    if table and case_id:
        raise UsageError("--case-id: a table has a case_id column, one id a row")
    if table:
        text = skeleton.csv_header(code, appeal=appeal, policy_set=payer_policy)
    elif fmt == "yaml":
        text = skeleton.skeleton_yaml(code, appeal=appeal, case_id=case_id, policy_set=payer_policy)
    else:
        text = skeleton.questionnaire_json(code, policy_set=payer_policy)
    if out is None:
        echo(text, nl=False)
        return
    from lettergen.files import write_outputs

    write_outputs({out: text.encode("utf-8")})  # an unwritable place is an OutputError (exit 3), as for letters
    echo(f"wrote {out}")


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="Allow this browser origin (CORS is off by default).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes sharing the port; one per core uses every core.")
    ] = 1,
    header_timeout: Annotated[
        float, typer.Option("--header-timeout", help="Seconds for a request's headers to arrive (then 408).")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option("--body-timeout", help="Seconds for a request's body to arrive after them (then 408).")
    ] = 30.0,
    keep_alive: Annotated[
        int, typer.Option("--keep-alive", help="Seconds an idle connection is kept between requests.")
    ] = 5,
    limit_concurrency: Annotated[
        int,
        typer.Option("--limit-concurrency", help="Open connections and requests per worker; beyond, 503."),
    ] = 64,
) -> None:
    """Run the HTTP service (POST /v1/check, POST /v1/draft, GET /v1/criteria, /healthz, /docs)."""
    from lettergen.interfaces.server import serve as run

    run(
        host=host,
        port=port,
        cors_origins=tuple(cors_origin or ()),
        workers=workers,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive=keep_alive,
        limit_concurrency=limit_concurrency,
    )


@eval_app.command("cases")
@handled
def eval_cases(
    folder: Annotated[Path, typer.Argument(help="Vignettes folder (cases/ and expected.yaml).")] = Path(
        "examples/vignettes"
    ),
    as_json: JsonOpt = False,
) -> None:
    """The clinical evaluation: every vignette's expected verdicts and deadline against lettergen's; exit 1 on
    any disagreement."""
    from dataclasses import asdict

    from lettergen.evals import vignettes

    rows = vignettes.run(folder)
    if as_json:
        _echo_json(
            {
                "agree": sum(r.agrees for r in rows),
                "total": len(rows),
                "rows": [asdict(r) for r in rows],
            }
        )
    else:
        echo(vignettes.report(rows))
    if not all(r.agrees for r in rows):
        raise typer.Exit(1)


@eval_app.command("guardrails")
@handled
def eval_guardrails(as_json: JsonOpt = False) -> None:
    """Mutation suite and false-alarm rate of the polish guard; exit 1 when a target is missed."""
    from lettergen.evals import guardrails as evals

    report = evals.run_guardrails()
    if as_json:
        _echo_json(report.model_dump(mode="json"))
    else:
        echo(evals.report_text(report))
    if not report.ok:
        raise typer.Exit(1)


@eval_app.command("edits")
@handled
def eval_edits(as_json: JsonOpt = False) -> None:
    """Lies and harmless edits of every example letter (md, html, docx) against `validate`; exit 1 unless every
    lie is caught and no harmless edit is flagged. The DOCX round trip needs LibreOffice (soffice)."""
    from lettergen.evals import edits as ev

    report = ev.run_edits()
    if as_json:
        _echo_json(report.model_dump(mode="json"))
    else:
        typer.echo(ev.report_text(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handled
def batch(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output directory (letters, ledgers, report).")],
    # Plain strings: typer coerces each Path argument through its own pydantic adapter, which cost a
    # 10,000-case batch about a second before its first case (run_batch takes str or Path).
    cases: Annotated[list[str] | None, typer.Argument(help="Case files.")] = None,
    table: Annotated[
        Path | None,
        typer.Option("--csv", help="A table of cases, one a row (columns: see 'init --csv' and the README)."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option("--jobs", "-j", help="Worker processes (1 runs in-process); with --polish they share the calls."),
    ] = 1,
    letter_type: Annotated[LetterTypeName | None, typer.Option("--type", help="Letter type for every case.")] = None,
    fmt: Annotated[FormatName, typer.Option("--format", help="Output format.")] = "md",
    on: Annotated[str | None, typer.Option("--date", help="Letter date, YYYY-MM-DD.")] = None,
    redact_ledger: Annotated[
        bool, typer.Option("--redact-ledger", help="Hashes in place of patient identifiers in the ledgers.")
    ] = False,
    polish: Annotated[bool, typer.Option("--polish", help="Polish wording with a model (guarded).")] = False,
    model: Annotated[str | None, typer.Option("--model", help="litellm model name for --polish.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="OpenAI-compatible server URL.")] = None,
    timeout: TimeoutOpt = 60.0,
    max_wait: MaxWaitOpt = 120.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Model requests in flight with --polish.")] = 8,
    profile: ProfileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Draft many cases into DIR with a report; exit 2 when some cases had bad input (the rest are written)."""
    from lettergen.interfaces import batch as batch_mod
    from lettergen.interfaces.batch_view import print_summary, progress, summary_json

    if concurrency < 1:
        raise UsageError(f"--concurrency: must be at least 1, not {concurrency}")
    letter_date = _parse_date(on)  # the flags before the table, and the table before the model
    items: list[Any] = list(cases or ())
    if table is not None:
        from lettergen.interfaces.table import read_table
        from lettergen.knowledge.store import load_kb

        items += read_table(table, load_kb().questions)  # a bad header stops here (exit 2), a bad row is reported
    options = batch_mod.BatchOptions(
        letter_type=letter_type,
        fmt=fmt,
        letter_date=letter_date,
        redact_ledger=redact_ledger,
        polisher=_polisher(polish, model, api_base, timeout, max_wait),
        concurrency=concurrency,
        profile=_profile(profile),
    )
    try:
        with progress(len(items)) as tick:
            summary = batch_mod.run_batch(items, out, jobs=jobs, options=options, on_result=tick)
    finally:
        if options.polisher is not None:
            options.polisher.close_workers()
    if as_json:
        _echo_json(summary_json(summary))
    else:
        print_summary(summary)
    code = summary.exit_code()
    if code:
        raise typer.Exit(code)


# The policy analyst's commands (kb import-ncci, kb lint, schema export, criteria test) live in their own module.
from lettergen.interfaces import kb_commands  # noqa: E402

kb_commands.register(app, criteria_app, handled)


def main() -> None:
    from lettergen.interfaces.startup import app_for, collector_for, plugins_off

    plugins_off()  # before any model is built: plugins see patient data
    collector_for(sys.argv)
    try:
        app_for(app, sys.argv)()
    except SystemExit as exc:
        sys.exit(exc.code)
    except OSError as exc:  # click's own output (--help, a usage message) could not be written: as echo does
        stdout_to_devnull()
        typer.echo(f"lettergen: standard output: cannot write ({exc.strerror or type(exc).__name__})", err=True)
        sys.exit(OutputError.exit_code)
