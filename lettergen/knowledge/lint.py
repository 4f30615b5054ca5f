"""The knowledge base's files checked one by one, every problem at once (``lettergen kb lint``).

The load (lettergen.knowledge.store) stops at the first problem; this reads every file of ``criteria/`` and
``citations/`` on its own and reports, each with its file and line:

- schema errors (every one pydantic finds, mapped back to the YAML line through the node marks);
- unknown or mistyped citation ids (with the closest id on file), bases that are not coverage sources, facts
  used but not declared, tests that do not fit their question, questions no rule reads;
- duplicate ids, codes covered twice in one set, questions declared with two shapes, unknown populations;
- fields of the schema that no code of lettergen reads (so a value written there changes nothing);
- policies past their ``review_by`` date (or without one).

The checks that need the whole store (``citations check``) and the drafting of every example are added by
lettergen.evals.kb_lint.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from lettergen.errors import DataError
from lettergen.knowledge import citations as citations_mod
from lettergen.knowledge import fixtures as fixtures_mod
from lettergen.knowledge import policies as policies_mod
from lettergen.knowledge.citations import Source
from lettergen.knowledge.policies import AGE, Policy, Vocabulary, rule_facts
from lettergen.knowledge.store import VOCABULARY, _yaml_files, policy_problems
from lettergen.yamlio import compose, decode_text, describe_error, line_of, loc_path, parse_document, read_bytes

Level = Literal["error", "warning", "note"]
_LINE = re.compile(r"\bline (\d+)")


@dataclass(frozen=True)
class Problem:
    level: Level
    check: str  # schema | citation | rule | question | duplicate | field | review | source | store | render
    file: str  # relative to the knowledge base's folder ("criteria/x.yaml"), or an example's path
    line: int | None
    where: str
    message: str

    def text(self) -> str:
        place = self.file + (f":{self.line}" if self.line else "") if self.file else ""
        parts = [p for p in (place, self.where) if p]
        return f"{self.level}: {': '.join(parts)}{': ' if parts else ''}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _File:
    name: str  # criteria/x.yaml
    path: Path
    node: Any  # the composed YAML, for line numbers
    data: Any = None


def schema_errors(model: type[BaseModel], data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Every error pydantic finds in ``data`` as (location, message), the union branches a value was tried
    against narrowed to the one it was meant for, and without the knock-on "too short" of a list whose items
    failed."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errs = [
            (tuple(e["loc"]), e["type"], describe_error(e)[1])
            for e in exc.errors(include_url=False, include_input=False)
        ]
        pruned = _prune(errs)
        out: list[tuple[tuple[Any, ...], str]] = []
        for loc, kind, msg in pruned:
            deeper = any(other[: len(loc)] == loc and len(other) > len(loc) for other, _, _ in pruned)
            if kind == "too_short" and deeper:
                continue
            if (loc, msg) not in out:
                out.append((loc, msg))
        return out
    return []


def _is_tag(part: Any) -> bool:
    """A union branch's name in a pydantic location (``AllOf``, ``function-after[...]``), not a key of the data."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _prune(errs: list[tuple[tuple[Any, ...], str, str]]) -> list[tuple[tuple[Any, ...], str, str]]:
    out: list[tuple[tuple[Any, ...], str, str]] = []
    groups: dict[tuple[Any, ...], dict[Any, list[tuple[tuple[Any, ...], str, str]]]] = {}
    for loc, kind, msg in errs:
        i = next((k for k, p in enumerate(loc) if _is_tag(p)), None)
        if i is None:
            out.append((loc, kind, msg))
        else:
            groups.setdefault(loc[:i], {}).setdefault(loc[i], []).append((loc[:i] + loc[i + 1 :], kind, msg))
    for prefix, branches in groups.items():

        def shape(branch: list[tuple[tuple[Any, ...], str, str]], prefix: tuple[Any, ...] = prefix) -> int:
            # Keys missing or unknown at the branch's own level: how far the value is from that form.
            return sum(
                1 for loc, kind, _ in branch if len(loc) == len(prefix) + 1 and kind in ("missing", "extra_forbidden")
            )

        best = min(shape(b) for b in branches.values())
        chosen = [b for b in branches.values() if shape(b) == best]
        if len(chosen) == 1:
            out += _prune(chosen[0])
            continue
        # No form fits better than another: one error at the value, naming the keys no form knows.
        unknown = set.intersection(
            *(
                {str(loc[-1]) for loc, kind, _ in b if kind == "extra_forbidden" and len(loc) == len(prefix) + 1}
                for b in chosen
            )
        )
        expected = sorted(
            {str(loc[-1]) for b in chosen for loc, kind, _ in b if kind == "missing" and len(loc) == len(prefix) + 1}
        )
        msg = "matches none of its forms"
        if unknown:
            msg += f": unknown key {', '.join(repr(k) for k in sorted(unknown))}"
        if expected:
            msg += f" (expected one of the keys {', '.join(expected)})"
        out.append((prefix, "union", msg))
    return out


def _read(root: Path, name: str, path: Path, problems: list[Problem]) -> _File | None:
    try:
        raw = read_bytes(path, DataError)
        text = decode_text(raw, name, DataError)
        data = parse_document(text, name, DataError, json_only=path.suffix.lower() == ".json")
    except DataError as exc:
        m = _LINE.search(str(exc))
        problems.append(Problem("error", "schema", name, int(m.group(1)) if m else None, "", _problem_of(exc)))
        return None
    return _File(name, path, compose(text), data)


def _problem_of(exc: DataError) -> str:
    text = str(exc)
    prefix = f"{exc.file}: " + (f"{exc.field}: " if exc.field else "")
    return text.removeprefix(prefix)


def _validate(f: _File, model: type[BaseModel], problems: list[Problem]) -> Any:
    if not isinstance(f.data, dict):
        kind = "a list" if isinstance(f.data, list) else type(f.data).__name__
        problems.append(Problem("error", "schema", f.name, 1, "", f"must hold a mapping at the top level, not {kind}"))
        return None
    errors = schema_errors(model, f.data)
    for loc, msg in errors:
        problems.append(Problem("error", "schema", f.name, line_of(f.node, loc), loc_path(loc), msg))
    return None if errors else model.model_validate(f.data)


@dataclass
class Loaded:
    """What :func:`lint_files` could read: the valid models by file, for the checks that follow."""

    sources: dict[str, tuple[_File, Source]]
    policies: dict[str, tuple[_File, Policy]]
    vocabulary: tuple[_File, Vocabulary] | None


def lint_files(root: Path, today: date, code_roots: Iterable[Path] = ()) -> tuple[list[Problem], Loaded]:
    """Every problem of the files under ``root`` (``criteria/``, ``citations/``) that the files themselves show.

    ``code_roots`` are the folders whose code and templates are searched for the fields they read (the lettergen
    package and the templates); without them, unread fields are not looked for."""
    problems: list[Problem] = []
    loaded = Loaded({}, {}, None)
    files: list[_File] = []
    for folder, model in (("citations", Source), ("criteria", Policy)):
        for path in _yaml_files(root / folder):
            f = _read(root, f"{folder}/{path.name}", path, problems)
            if f is None:
                continue
            files.append(f)
            obj = _validate(f, model, problems)
            if isinstance(obj, Source):
                if obj.id in loaded.sources:
                    problems.append(_dup(f, "id", f"source id '{obj.id}' is also {loaded.sources[obj.id][0].name}'s"))
                else:
                    loaded.sources[obj.id] = (f, obj)
            elif isinstance(obj, Policy):
                if obj.id in loaded.policies:
                    problems.append(_dup(f, "id", f"policy id '{obj.id}' is also {loaded.policies[obj.id][0].name}'s"))
                else:
                    loaded.policies[obj.id] = (f, obj)
    vpath = root / "criteria" / VOCABULARY
    if vpath.is_file():
        vf = _read(root, f"criteria/{VOCABULARY}", vpath, problems)
        if vf is not None:
            files.append(vf)
            vocab = _validate(vf, Vocabulary, problems)
            if vocab is not None:
                loaded.vocabulary = (vf, vocab)
    problems += _store_problems(loaded)
    problems += _review_problems(loaded, today)
    roots = list(code_roots)
    if roots:
        problems += unread_fields(files, roots)
    return problems, loaded


def _dup(f: _File, where: str, message: str) -> Problem:
    return Problem("error", "duplicate", f.name, line_of(f.node, where), where, message)


def _store_problems(loaded: Loaded) -> list[Problem]:
    """The checks a load makes across files, each problem reported rather than the first."""
    problems: list[Problem] = []
    sources = {k: s for k, (_, s) in loaded.sources.items()}
    all_ids = [f"{s.id}.{x.id}" for s in sources.values() for x in s.findings]
    questions: dict[str, tuple[str, Any]] = {}
    vocab = loaded.vocabulary[1] if loaded.vocabulary else Vocabulary()
    for q in vocab.history:
        questions[q.id] = (f"criteria/{VOCABULARY}", q)
    by_code: dict[tuple[str, str], str] = {}
    for f, pol in loaded.policies.values():
        for where, problem in policy_problems(pol, sources):
            check = "citation" if "cites unknown" in problem or "may support, not gate" in problem else "rule"
            if problem.startswith("is read by no rule"):
                check = "question"
            m = re.search(r"cites unknown '([^']*)'", problem)
            if m:
                close = difflib.get_close_matches(m.group(1), all_ids, n=1, cutoff=0.75)
                if close:
                    problem += f"; did you mean '{close[0]}'?"
            problems.append(Problem("error", check, f.name, line_of(f.node, where), where, problem))
        for q in pol.questions:
            where = f"questions.{q.id}"
            if q.id == AGE.id:
                problems.append(
                    Problem(
                        "error",
                        "question",
                        f.name,
                        line_of(f.node, where),
                        where,
                        "is derived from the birth date; do not declare it",
                    )
                )
                continue
            prior = questions.get(q.id)
            shape = (q.type, q.unit, q.choices, q.min, q.max)
            if (
                prior is not None
                and (prior[1].type, prior[1].unit, prior[1].choices, prior[1].min, prior[1].max) != shape
            ):
                problems.append(
                    Problem(
                        "error",
                        "question",
                        f.name,
                        line_of(f.node, where),
                        where,
                        f"declared in {prior[0]} with another type, unit, choices or range",
                    )
                )
            questions.setdefault(q.id, (f.name, q))
        for c in pol.codes:
            key = (pol.set, c.code)
            if key in by_code:
                where = f"codes.{c.code}"
                problems.append(_dup(f, where, f"{c.code} is already covered by {by_code[key]} in set {pol.set}"))
            else:
                by_code[key] = pol.id
    if loaded.vocabulary:
        vf, v = loaded.vocabulary
        for pname, prule in v.populations.items():
            for fact in rule_facts(prule):
                if fact not in questions and fact != AGE.id:
                    where = f"populations.{pname}"
                    problems.append(
                        Problem(
                            "error",
                            "rule",
                            vf.name,
                            line_of(vf.node, where),
                            where,
                            f"uses fact '{fact}' that no file declares",
                        )
                    )
    names = set(vocab.populations)
    for f, src in loaded.sources.values():
        for finding in src.findings:
            for pname in finding.populations:
                if pname not in names:
                    where = f"findings.{finding.id}.populations"
                    problems.append(
                        Problem("error", "rule", f.name, line_of(f.node, where), where, f"unknown population '{pname}'")
                    )
    return problems


def _review_problems(loaded: Loaded, today: date) -> list[Problem]:
    out: list[Problem] = []
    for f, pol in loaded.policies.values():
        if pol.review_by is None:
            out.append(
                Problem("warning", "review", f.name, line_of(f.node, "id"), "review_by", "has no review_by date")
            )
        elif pol.review_by < today:
            out.append(
                Problem(
                    "warning",
                    "review",
                    f.name,
                    line_of(f.node, "review_by"),
                    "review_by",
                    f"was due for review on {pol.review_by.isoformat()}: re-check it against its sources",
                )
            )
    return out


# -- fields no code reads -----------------------------------------------------------------------------------


def _models() -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for mod in (policies_mod, citations_mod):
        for obj in vars(mod).values():
            model = isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == mod.__name__
            if model and obj is not citations_mod.Strict and obj not in out:
                out.append(obj)
    return out


@cache
def _corpus(roots: tuple[str, ...]) -> str:
    """The code and templates under ``roots``, without the lines that declare a model's fields."""
    chunks: list[str] = []
    declaration = re.compile(r"^\s+[a-z_][a-z0-9_]*\s*:\s*[^=]*(=.*)?$")
    skip = {Path(policies_mod.__file__).resolve(), Path(citations_mod.__file__).resolve(), Path(__file__).resolve()}
    skip.add(Path(fixtures_mod.__file__).resolve())
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix not in (".py", ".j2") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.resolve() in skip:
                # The models' own methods read fields too; their declarations do not count.
                text = "\n".join(line for line in text.splitlines() if not declaration.match(line))
            chunks.append(text)
    return "\n".join(chunks)


def unread_fields(files: list[_File], roots: list[Path]) -> list[Problem]:
    """Fields of the criteria and citation schema that no code or template reads: a value written there
    changes nothing a reader sees. Each is reported where a file first sets it."""
    corpus = _corpus(tuple(str(r) for r in roots))
    problems: list[Problem] = []
    for model in _models():
        for name, field in model.model_fields.items():
            key = field.alias or name
            pattern = re.compile(rf"\.{re.escape(name)}\b|[\"']{re.escape(key)}[\"']|\b{re.escape(name)}\s*\)")
            if pattern.search(corpus):
                continue
            uses = [(f, where) for f in files for where in _keys_named(f.data, key)]
            first = uses[0] if uses else None
            message = f"{model.__name__}.{key} is read by no code or template of lettergen"
            message += f"; set in {len({f.name for f, _ in uses})} file(s)" if uses else "; no file sets it"
            problems.append(
                Problem(
                    "warning",
                    "field",
                    first[0].name if first else "",
                    line_of(first[0].node, first[1]) if first else None,
                    first[1] if first else "",
                    message,
                )
            )
    return problems


def _keys_named(data: Any, key: str, path: str = "") -> Iterator[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            here = f"{path}.{k}" if path else str(k)
            if k == key:
                yield here
            yield from _keys_named(v, key, here)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _keys_named(v, key, f"{path}[{i}]")
