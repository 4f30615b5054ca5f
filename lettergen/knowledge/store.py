"""The knowledge base: citations and criteria loaded from the data folders, checked, and hashed.

Data lives beside the code: in a checkout at the repository root, in a wheel under
``lettergen/_data``. ``LETTERGEN_DATA`` points somewhere else (a site's own knowledge base).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from lettergen.errors import DataError, InputError
from lettergen.knowledge.citations import CitationIssue, Finding, Source, check_source
from lettergen.knowledge.policies import AGE, Policy, Question, Vocabulary, rule_facts
from lettergen.yamlio import first_error, parse_bytes, read_bytes

_T = TypeVar("_T")
_P = ParamSpec("_P")
_PKG = Path(__file__).resolve().parent.parent  # the lettergen package folder


def data_dir() -> Path:
    env = os.environ.get("LETTERGEN_DATA")
    return Path(env) if env else _installed_data_dir()


@cache
def _installed_data_dir() -> Path:
    # A wheel carries the data in lettergen/_data; a source checkout has it beside the package.
    packaged = _PKG / "_data"
    return packaged if packaged.is_dir() else _PKG.parent


@dataclass(frozen=True)
class Reference:
    """One entry of a letter's reference list: the source's id and its bibliographic entry."""

    id: str
    text: str

    def reference(self) -> str:  # what templates written for a Source call
        return self.text


@dataclass(frozen=True)
class KnowledgeBase:
    root: Path
    sources: dict[str, Source]
    policies: dict[str, Policy]
    questions: dict[str, Question]
    hashes: dict[str, str]
    # (set, code) -> policy id
    by_code: dict[tuple[str, str], str] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    # "source.finding" -> (source, finding): a letter resolves a few hundred citations, each a scan of its
    # source's findings without this; built from ``sources``, so a replace() keeps it true.
    citations: dict[str, tuple[Source, Finding]] = field(init=False, repr=False, compare=False)
    # Values built from this knowledge base alone (lettergen.letter.claims: a finding's claim), shared by every
    # letter it drafts. Empty again after a replace() or in a pickle: it belongs to this object's data.
    memo: dict[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {f"{s.id}.{f.id}": (s, f) for s in self.sources.values() for f in s.findings}
        object.__setattr__(self, "citations", index)
        object.__setattr__(self, "memo", {})

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "memo": {}}

    # -- lookups -------------------------------------------------------------------------------
    def finding(self, cid: str) -> tuple[Source, Finding]:
        hit = self.citations.get(cid)
        if hit is None:
            raise InputError(f"unknown citation '{cid}'")
        return hit

    def remember(self, key: tuple[str, ...], build: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``build(*args, **kwargs)``, a value made from this knowledge base alone, kept under ``key``: built on
        first use, then shared by every letter (so it must never be changed: frozen models and tuples). The
        arguments are passed, not closed over, so that a hit costs one lookup."""
        value: _T | None = self.memo.get(key)
        if value is None:
            value = self.memo[key] = build(*args, **kwargs)
        return value

    def reference(self, source_id: str) -> Reference:
        """A source as a letter's reference list prints it, formatted once per knowledge base."""
        return self.remember(("reference", source_id), self._reference, source_id)

    def _reference(self, source_id: str) -> Reference:
        return Reference(source_id, self.sources[source_id].reference())

    def has_citation(self, cid: str) -> bool:
        return cid in self.citations

    def policy_sets(self) -> list[str]:
        return sorted({p.set for p in self.policies.values()})

    def policy_for(self, code: str, policy_set: str | None = None) -> Policy | None:
        if policy_set:
            pid = self.by_code.get((policy_set, code))
            if pid:
                return self.policies[pid]
        pid = self.by_code.get(("default", code))
        return self.policies[pid] if pid else None

    def codes(self) -> list[str]:
        return sorted({c for (_, c) in self.by_code})

    def _secondary_beside_primary(self) -> list[CitationIssue]:
        """A secondary source (a re-hosted copy, a reference page, a meeting abstract) may be cited for a criterion
        only where no primary source the criterion cites supports it too."""
        issues: list[CitationIssue] = []
        for pol in self.policies.values():
            for group, items in (
                ("indications", pol.indications),
                ("exclusions", pol.exclusions),
                ("considerations", pol.considerations),
            ):
                for c in items:
                    cited = [cid for cid in dict.fromkeys(c.basis + c.citations) if self.has_citation(cid)]
                    primary = [cid for cid in cited if self.finding(cid)[0].tier != "secondary"]
                    for cid in cited:
                        if primary and self.finding(cid)[0].tier == "secondary":
                            issues.append(
                                CitationIssue(
                                    level="error",
                                    where=f"{pol.id}: {group}.{c.id}",
                                    problem=f"cites the secondary source '{cid}' beside the primary '{primary[0]}'",
                                )
                            )
        return issues

    def check(self, today: date, cited_elsewhere: Mapping[str, Iterable[str]] | None = None) -> list[CitationIssue]:
        """Integrity findings across the store; errors make ``citations check`` fail.

        ``cited_elsewhere`` names, by where they are cited (a module of the later stages, such as the appeal
        deadlines), the citation ids cited outside the criteria files: each must resolve, and counts as cited.
        """
        issues: list[CitationIssue] = []
        for src in self.sources.values():
            issues += check_source(src, today)
        cited: set[str] = set()
        for pol in self.policies.values():
            for where, cid in pol.cited_ids():
                cited.add(cid)
                if not self.has_citation(cid):
                    issues.append(
                        CitationIssue(level="error", where=f"{pol.id}: {where}", problem=f"cites unknown '{cid}'")
                    )
        issues += self._secondary_beside_primary()
        for where, ids in (cited_elsewhere or {}).items():
            for cid in ids:
                cited.add(cid)
                if not self.has_citation(cid):
                    issues.append(CitationIssue(level="error", where=where, problem=f"cites unknown '{cid}'"))
        for src in self.sources.values():
            for f in src.findings:
                if f"{src.id}.{f.id}" not in cited:
                    issues.append(
                        CitationIssue(level="warning", where=f"{src.id}.{f.id}", problem="is cited by no criterion")
                    )
        return issues


VOCABULARY = "_vocabulary.yaml"
# Source kinds that can make a criterion a coverage condition (Criterion.basis).
_COVERAGE_TYPES = ("payer_policy", "regulation", "coverage_determination")


def _yaml_files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def _parse(model: Any, path: Path, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field_name, msg = first_error(exc)
        raise DataError(str(path), field_name, msg) from None


def load_kb(root: Path | None = None) -> KnowledgeBase:
    return _load_kb(str(root or data_dir()))


@cache
def _load_kb(root_s: str) -> KnowledgeBase:
    """The knowledge base in ``root``, read and checked from its files once per process."""
    root = Path(root_s)
    cdir, pdir = root / "citations", root / "criteria"
    if not cdir.is_dir() or not pdir.is_dir():
        raise DataError(str(root), "", "has no citations/ or criteria/ folder")
    files = {f"{d.name}/{p.name}": p for d in (cdir, pdir) for p in _yaml_files(d)}
    vocab = pdir / VOCABULARY
    if vocab.is_file():
        files[f"criteria/{VOCABULARY}"] = vocab
    # The bytes are read once: hashed for the ledger, then parsed.
    raw = {name: read_bytes(path, DataError) for name, path in files.items()}
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in raw.items()}
    return _build(root, files, raw, hashes)


def _build(root: Path, files: dict[str, Path], raw: dict[str, bytes], hashes: dict[str, str]) -> KnowledgeBase:
    sources: dict[str, Source] = {}
    for name, path in files.items():
        if not name.startswith("citations/"):
            continue
        src: Source = _parse(Source, path, parse_bytes(raw[name], path, DataError))
        if src.id in sources:
            raise DataError(str(path), "id", f"duplicate source id '{src.id}'")
        sources[src.id] = src
    vocabulary = Vocabulary()
    vname = f"criteria/{VOCABULARY}"
    if vname in files:
        vocabulary = _parse(Vocabulary, files[vname], parse_bytes(raw[vname], files[vname], DataError))
    policies: dict[str, Policy] = {}
    questions: dict[str, Question] = {AGE.id: AGE}
    for q in vocabulary.history:
        questions[q.id] = q
    by_code: dict[tuple[str, str], str] = {}
    for name, path in files.items():
        if not name.startswith("criteria/") or name == vname:
            continue
        pol: Policy = _parse(Policy, path, parse_bytes(raw[name], path, DataError))
        if pol.id in policies:
            raise DataError(str(path), "id", f"duplicate policy id '{pol.id}'")
        policies[pol.id] = pol
        for q in pol.questions:
            if q.id == AGE.id:
                raise DataError(str(path), f"questions.{q.id}", "is derived from the birth date; do not declare it")
            prior = questions.get(q.id)
            shape = (q.type, q.unit, q.choices, q.min, q.max)
            if prior is not None and (prior.type, prior.unit, prior.choices, prior.min, prior.max) != shape:
                raise DataError(
                    str(path), f"questions.{q.id}", "declared elsewhere with another type, unit, choices or range"
                )
            questions.setdefault(q.id, q)
        _check_policy(path, pol, sources)
        for code in pol.codes:
            key = (pol.set, code.code)
            if key in by_code:
                raise DataError(
                    str(path), "codes", f"{code.code} is already covered by {by_code[key]} in set {pol.set}"
                )
            by_code[key] = pol.id
    for pname, prule in vocabulary.populations.items():
        for fact in rule_facts(prule):
            if fact not in questions:
                raise DataError(str(files[vname]), f"populations.{pname}", f"uses fact '{fact}' that no file declares")
    for src in sources.values():
        for f in src.findings:
            for pname in f.populations:
                if pname not in vocabulary.populations:
                    raise DataError(
                        f"citations/{src.id}.yaml", f"findings.{f.id}.populations", f"unknown population '{pname}'"
                    )
    return KnowledgeBase(root, sources, policies, questions, hashes, by_code, vocabulary)


def _source_of(sources: Mapping[str, Source], cid: str) -> Source | None:
    """The source of citation ``source.finding`` when both exist (the store is not indexed yet while loading)."""
    source_id, _, finding_id = cid.partition(".")
    src = sources.get(source_id)
    return src if src is not None and src.finding(finding_id) is not None else None


def _check_policy(path: Path, pol: Policy, sources: dict[str, Source]) -> None:
    """What the schema alone cannot check: facts declared and read, bases that are coverage sources (the first
    problem fails the load, naming the file)."""
    for where, problem in policy_problems(pol, sources):
        raise DataError(str(path), where, problem)


def policy_problems(pol: Policy, sources: Mapping[str, Source]) -> Iterator[tuple[str, str]]:
    """Every (where, problem) of one policy that the schema alone cannot see, in the order a load meets them;
    ``lettergen kb lint`` lists them all."""
    declared = {q.id for q in pol.questions} | {AGE.id}
    said: set[tuple[str, str]] = set()  # (where, citation) of an unknown citation already named
    for group, items in (
        ("indications", pol.indications),
        ("exclusions", pol.exclusions),
        ("considerations", pol.considerations),
    ):
        for c in items:
            for fact in rule_facts(c.rule):
                if fact not in declared:
                    yield f"{group}.{c.id}", f"uses fact '{fact}' that the file does not declare"
            yield from _test_problems(f"{group}.{c.id}", c.rule, pol)
            for cid in c.basis:
                src = _source_of(sources, cid)
                if src is None:
                    said.add((f"{group}.{c.id}", cid))
                    yield f"{group}.{c.id}.basis", f"cites unknown '{cid}'"
                # The kind of document decides (a payer's policy, a regulation, a coverage determination); a
                # copy held only on a third-party site is still that document, marked by its tier (secondary).
                elif src.type not in _COVERAGE_TYPES:
                    yield (
                        f"{group}.{c.id}.basis",
                        f"'{cid}' is a {src.type}, not a payer policy or regulation: it may support, not gate",
                    )
    for where, cid in pol.cited_ids():
        if _source_of(sources, cid) is None and (where, cid) not in said:
            said.add((where, cid))
            yield where, f"cites unknown '{cid}'"
    used = set(pol.rules_facts())
    for q in pol.questions:
        if q.id not in used:
            yield f"questions.{q.id}", "is read by no rule of this file; remove it"


def _test_problems(where: str, rule: Any, pol: Policy) -> Iterator[tuple[str, str]]:
    from lettergen.knowledge.policies import AllOf, AnyOf, FactTest, NotOf

    qs = {q.id: q for q in pol.questions} | {AGE.id: AGE}
    if isinstance(rule, FactTest):
        q = qs.get(rule.fact)
        if q is None:  # undeclared: said once, by the caller
            return
        numeric = any(v is not None for v in (rule.gt, rule.ge, rule.lt, rule.le))
        if numeric and q.type != "number":
            yield where, f"compares '{rule.fact}' as a number but it is {q.type}"
        if numeric and rule.unit != q.unit:
            yield where, f"compares '{rule.fact}' in '{rule.unit}' but the question asks '{q.unit}'"
        bounds = [b for b in (rule.gt, rule.ge, rule.lt, rule.le) if b is not None]
        if bounds and q.min is not None and q.max is not None and not q.min <= bounds[0] <= q.max:
            yield where, f"compares '{rule.fact}' with {bounds[0]:g}, outside its range"
        if rule.in_ is not None:
            bad = [c for c in rule.in_ if c not in q.choices]
            if bad:
                yield where, f"'{bad[0]}' is not a choice of '{rule.fact}'"
        if rule.is_ is None and rule.in_ is None and not numeric and q.type != "bool":
            yield where, f"tests '{rule.fact}' as true but it is {q.type}"
    elif isinstance(rule, AllOf | AnyOf):
        for r in rule.all if isinstance(rule, AllOf) else rule.any:
            yield from _test_problems(where, r, pol)
    elif isinstance(rule, NotOf):
        yield from _test_problems(where, rule.not_, pol)
