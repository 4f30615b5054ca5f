"""`lettergen citations check` on a deliberately broken knowledge base."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from lettergen.knowledge.store import _load_kb

SOURCE = """id: demo
type: payer_policy
tier: {tier}
title: A demo source
journal: Demo Journal
year: 2020
doi: 10.1000/demo
accessed: {accessed}
license: test fixture
findings:
  - id: used
    statement: Demo finding with 12 patients and p = 0.04.
    figures: ["12 patients"{extra_figure}]
    locator: {locator}
  - id: unused
    statement: A finding that no criterion cites.
    locator: Abstract
"""

POLICY = """id: demo-policy
title: Demo policy
version: "1"
effective: 2026-01-01
family: demo
codes: [{{code: "20206", label: demo}}]
questions: [{{id: flag, prompt: "Flag?", type: bool}}]
indications: [{{id: flag-set, text: Flag is set., rule: {{fact: flag}}, basis: [{cite}], citations: [{cite}]}}]
checklist: [demo]
"""


def make_kb(
    tmp_path: Path,
    *,
    accessed: str = "2026-11-01",
    locator: str = "Abstract",
    extra_figure: str = "",
    cite: str = "demo.used",
    duplicate: bool = False,
    beside: str = "",
) -> Path:
    root = tmp_path / "kb"
    # The real regulation sources stay: the deadline rules cite them and the check verifies that.
    shutil.copytree(
        ROOT / "citations", root / "citations", ignore=lambda d, names: [n for n in names if not n.startswith("cfr-")]
    )
    (root / "criteria").mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "citations" / "demo.yaml").write_text(
        SOURCE.format(accessed=accessed, locator=locator or "''", extra_figure=extra_figure, tier="payer_policy")
    )
    if duplicate:
        (root / "citations" / "demo-copy.yaml").write_text(
            SOURCE.format(accessed=accessed, locator="x", extra_figure="", tier="payer_policy")
        )
    if beside:  # a second copy of the source, of the given tier, cited beside the first
        text = SOURCE.format(accessed=accessed, locator="x", extra_figure="", tier=beside)
        (root / "citations" / "demo-rehost.yaml").write_text(text.replace("id: demo\n", "id: demo-rehost\n", 1))
        cite = f"{cite}, demo-rehost.used"
    (root / "criteria" / "demo.yaml").write_text(POLICY.format(cite=cite))
    return root


CASES = [
    # kwargs, exit code, fragment
    ({}, 0, "warning: demo.unused: is cited by no criterion"),
    ({}, 0, "statement carries 0.04"),
    ({"accessed": "2020-01-01"}, 0, "more than two years ago"),
    ({"locator": ""}, 0, "demo.used: has no locator"),
    ({"extra_figure": ', "99%"'}, 1, "figure '99%' does not appear in its statement"),
    ({"cite": "demo.nope"}, 2, "cites unknown 'demo.nope'"),  # fails at load, naming the criteria file
    ({"duplicate": True}, 2, "duplicate source id 'demo'"),
    ({"beside": "secondary"}, 1, "cites the secondary source 'demo-rehost.used' beside the primary 'demo.used'"),
    ({"beside": "guideline"}, 0, "ok: 0 errors"),
]


@pytest.mark.parametrize(("kwargs", "code", "fragment"), CASES)
def test_citations_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], code: int, fragment: str
) -> None:
    root = make_kb(tmp_path, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setenv("LETTERGEN_DATA", str(root))
    _load_kb.cache_clear()
    try:
        rc, out, err = run_cli("citations", "check")
    finally:
        _load_kb.cache_clear()
    assert rc == code, out + err
    assert fragment in out + err
