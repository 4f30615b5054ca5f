"""``lettergen kb lint``: every problem of the knowledge base at once, each with its file and line.

The file checks (lettergen.knowledge.lint), then, when the knowledge base loads, the store's own check
(``citations check``: unresolved citations, secondary sources beside primary ones, figures, stale access dates)
and every template drafted for every example case in every letter type and text format (a case without a
denial has no appeal to draft; an LMN for a case with no code met is not drafted: NothingToDraft).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lettergen.errors import LettergenError, NothingToDraft
from lettergen.knowledge.lint import Level, Loaded, Problem, lint_files
from lettergen.knowledge.store import data_dir, load_kb
from lettergen.yamlio import line_of

LETTER_TYPES = ("lmn", "appeal", "external_review", "peer_to_peer", "determination")
FORMATS = ("md", "txt", "html")
# The citation schema has no re-check date of its own: say so, and what stands in for it.
NO_RECHECK_FIELD = (
    "the citation schema has no re-check date: a source is flagged by its 'accessed' date instead "
    "(more than two years ago)"
)


@dataclass
class LintReport:
    problems: list[Problem] = field(default_factory=list)
    drafted: int = 0
    examples: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def text(self) -> str:
        lines = [p.text() for p in self.problems]
        lines.append(
            f"{'ok' if not self.errors else 'FAILED'}: {len(self.errors)} errors, {len(self.warnings)} warnings; "
            f"{self.drafted} letters drafted from {self.examples} examples"
        )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "drafted": self.drafted,
            "examples": self.examples,
            "problems": [p.as_dict() for p in self.problems],
        }


def run(today: date, examples: Path | None = None, root: Path | None = None) -> LintReport:
    import lettergen

    root = root or data_dir()
    code_roots = [Path(lettergen.__file__).resolve().parent, root / "templates"]
    problems, loaded = lint_files(root, today, code_roots)
    report = LintReport(problems=problems)
    report.problems.append(Problem("note", "source", "", None, "", NO_RECHECK_FIELD))
    if any(p.level == "error" for p in problems):
        report.problems.append(
            Problem("note", "render", "", None, "", "the knowledge base does not load: letters were not drafted")
        )
        return report
    try:
        kb = load_kb(root)
    except LettergenError as exc:  # a problem the file checks do not see: reported, and drafting skipped
        report.problems.append(Problem("error", "store", "", None, "", str(exc)))
        return report
    report.problems += _store_issues(kb, today, loaded)
    folder = examples if examples is not None else root / "examples"
    _render_examples(kb, folder, report, explicit=examples is not None)
    return report


def _store_issues(kb: Any, today: date, loaded: Loaded) -> list[Problem]:
    from lettergen import api

    out: list[Problem] = []
    for issue in api.check_knowledge(kb, today):
        file, line, where = _place(issue.where, loaded)
        out.append(Problem(issue.level, "store", file, line, where, issue.problem))
    return out


def _place(where: str, loaded: Loaded) -> tuple[str, int | None, str]:
    """A citation issue's place (``policy-id: group.id`` or ``source-id.finding-id``) as file, line and path."""
    pid, sep, rest = where.partition(": ")
    if sep and pid in loaded.policies:
        f, _ = loaded.policies[pid]
        return f.name, line_of(f.node, rest), rest
    sid, _, fid = where.partition(".")
    if sid in loaded.sources:
        f, _ = loaded.sources[sid]
        path = f"findings.{fid}" if fid else "id"
        return f.name, line_of(f.node, path), path if fid else ""
    return "", None, where


def _render_examples(kb: Any, folder: Path, report: LintReport, explicit: bool) -> None:
    from lettergen import api
    from lettergen.letter.appeals import APPEAL_TYPES

    cases = sorted(p for p in folder.glob("*") if p.is_file() and re.search(r"\.(ya?ml|json)$", p.name))
    if not cases:
        level: Level = "error" if explicit else "note"
        report.problems.append(Problem(level, "render", str(folder), None, "", "no example case to draft"))
        return
    for path in cases:
        name = _shown(path)
        try:
            loaded = api.load_case(path, kb=kb)
        except LettergenError as exc:
            report.problems.append(Problem("error", "render", name, None, "", str(exc)))
            continue
        report.examples += 1
        for ltype in LETTER_TYPES:
            if ltype in APPEAL_TYPES and loaded.case.denial is None:
                continue
            for fmt in FORMATS:
                try:
                    api.draft(loaded, letter_type=ltype, fmt=fmt, kb=kb)
                except NothingToDraft:
                    break  # the same for every format
                except LettergenError as exc:
                    report.problems.append(Problem("error", "render", name, None, f"{ltype} {fmt}", str(exc)))
                except Exception as exc:  # a template that raises is a problem of the templates, reported
                    report.problems.append(
                        Problem("error", "render", name, None, f"{ltype} {fmt}", f"{type(exc).__name__}: {exc}")
                    )
                else:
                    report.drafted += 1


def _shown(path: Path) -> str:
    """A path as the user gave it, relative to the working folder where it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
