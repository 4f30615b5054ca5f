"""``lettergen criteria test [CODE]``: each policy's fixtures (lettergen.knowledge.fixtures) through the engine.

A fixture becomes a case with only what the rules read: its facts, its diagnoses (``dx``, else R69, an
unspecified illness that no rule or population names), a patient of its ``age`` on the fixture day, and one
service per code it expects a verdict for. The case is checked as any case is (facts declared, values of their
type), decided, and each verdict compared; the code must be decided by the policy the fixture file is named
after (a fixture of a payer overlay selects that payer's set unless it names another).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lettergen.case.codes import normalize_service_code
from lettergen.case.model import Case
from lettergen.decision.engine import check_facts, decide
from lettergen.errors import CaseError, DataError
from lettergen.knowledge.fixtures import FIXTURES_DIR, CriteriaFixture, FixtureFact, FixtureFile
from lettergen.knowledge.lint import schema_errors
from lettergen.knowledge.store import KnowledgeBase, load_kb
from lettergen.yamlio import compose, decode_text, line_of, loc_path, parse_document, read_bytes

# The day a fixture's case is decided on: fixed, so that a fixture's answer never depends on when it runs.
FIXTURE_DAY = date(2026, 1, 1)
DEFAULT_DX = "R69"


@dataclass
class FixtureResult:
    file: str
    policy: str
    name: str
    expected: dict[str, str]
    got: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.got == self.expected

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def fixture_files(kb: KnowledgeBase) -> list[Path]:
    folder = kb.root / "criteria" / FIXTURES_DIR
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def read_fixtures(path: Path) -> tuple[CriteriaFixture, ...]:
    """A fixture file's fixtures; DataError naming the file and line of the first problem."""
    text = decode_text(read_bytes(path, DataError), str(path), DataError)
    data = parse_document(text, str(path), DataError)
    errors = schema_errors(FixtureFile, data)
    if errors:
        loc, msg = errors[0]
        line = line_of(compose(text), loc)
        raise DataError(f"{path}:{line}" if line else str(path), loc_path(loc), msg)
    return FixtureFile.model_validate(data).root


def run(code: str | None = None, kb: KnowledgeBase | None = None) -> list[FixtureResult]:
    """Every fixture (of the policies on file), or those that expect a verdict for ``code``."""
    kb = kb or load_kb()
    wanted = normalize_service_code(code) if code else None
    results: list[FixtureResult] = []
    for path in fixture_files(kb):
        name = f"criteria/{FIXTURES_DIR}/{path.name}"
        pol = kb.policies.get(path.stem)
        if pol is None:
            raise DataError(name, "", f"is named after no policy on file ('{path.stem}')")
        for fx in read_fixtures(path):
            expected: dict[str, str] = {normalize_service_code(c): v for c, v in fx.expect.items()}
            if wanted and wanted not in expected:
                continue
            results.append(_run_one(kb, name, pol.id, fx, expected))
    return results


def _run_one(
    kb: KnowledgeBase, file: str, policy_id: str, fx: CriteriaFixture, expected: dict[str, str]
) -> FixtureResult:
    pol = kb.policies[policy_id]
    result = FixtureResult(file=file, policy=policy_id, name=fx.name, expected=expected)
    payer_policy = fx.payer_policy or (pol.set if pol.set != "default" else None)
    birth = FIXTURE_DAY.replace(year=FIXTURE_DAY.year - fx.age)
    facts = {
        fid: ({"value": v.value, "unit": v.unit} if isinstance(v, FixtureFact) else {"value": v})
        for fid, v in fx.facts.items()
    }
    data = {
        "case_id": "criteria-fixture",
        "letter": {"type": "determination", "date": FIXTURE_DAY},
        "patient": {"name": "Fixture Patient", "birth_date": birth},
        "payer": {"name": "Fixture payer", "plan_type": "commercial", "policy": payer_policy},
        "provider": {"name": "Fixture Clinician", "npi": "1234567893"},
        "diagnoses": [{"code": d} for d in (fx.dx or (DEFAULT_DX,))],
        "services": [{"code": c} for c in expected],
        "facts": facts,
    }
    try:
        case = Case.model_validate(data)
        check_facts(case, kb, file)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        result.error = f"{loc_path(tuple(err['loc']))}: {err['msg']}"
        return result
    except CaseError as exc:
        result.error = str(exc).removeprefix(f"{file}: ")
        return result
    decision = decide(case, kb, FIXTURE_DAY)
    own = {c.code for c in pol.codes}
    for s in decision.services:
        result.got[s.code] = s.verdict
        if s.missing_facts:
            result.missing[s.code] = [m.id for m in s.missing_facts]
        if s.code in own and s.policy != pol.ref:  # another code of a mixed case is decided by its own policy
            result.error = f"{s.code} is decided by {s.policy}, not by {pol.ref} (check payer_policy)"
    if not own & set(expected):
        result.error = f"expects a verdict for no code of {pol.id} ({', '.join(sorted(own))})"
    return result


def report(results: list[FixtureResult]) -> str:
    lines: list[str] = []
    for r in results:
        if r.ok:
            lines.append(f"ok    {r.policy}: {r.name}")
            continue
        why = r.error or "; ".join(
            f"{c} expected {v}, got {r.got.get(c, 'nothing')}"
            + (f" (missing: {', '.join(r.missing[c])})" if r.missing.get(c) else "")
            for c, v in r.expected.items()
            if r.got.get(c) != v
        )
        lines.append(f"FAIL  {r.policy}: {r.name}: {why}  [{r.file}]")
    passed = sum(r.ok for r in results)
    policies = len({r.policy for r in results})
    verdict = "ok" if passed == len(results) else "FAILED"
    lines.append(f"{verdict}: {passed} of {len(results)} fixtures pass ({policies} policies)")
    return "\n".join(lines)
