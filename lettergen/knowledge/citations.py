"""The citation store: one YAML file per source document, each with findings in our own words.

A claim cites ``source_id.finding_id``. Findings carry the exact figures they state and a locator
(section, table, page), so a reviewer can go from any sentence of a letter to the page it rests on.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SourceType = Literal[
    "guideline",
    "consensus",
    "payer_policy",
    "regulation",
    "journal_article",
    "conference_abstract",  # a meeting abstract: weaker evidence than a peer-reviewed article
    "reference_work",  # a clinical reference (e.g. an online textbook chapter), not primary research
    "code_set",
    "coverage_determination",
]

_ID = r"^[a-z0-9][a-z0-9_-]*$"

# How strong a source is as evidence, strongest kind first for a coverage question. A letter cites a payer's
# own policy or a regulation for a coverage condition, a guideline or peer-reviewed study to support it, and
# a secondary source (a re-hosted copy, a vendor or reference page, a meeting abstract) only where no primary
# document states the same thing (`lettergen citations check` enforces this).
Tier = Literal["regulation", "payer_policy", "guideline", "peer_reviewed", "secondary"]
TIERS: tuple[str, ...] = ("regulation", "payer_policy", "guideline", "peer_reviewed", "secondary")


class Strict(BaseModel):
    """Base for checked data: unknown keys are errors, values are immutable.

    Validators are built on first use (``defer_build``), so a command that reads no data file builds none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)


class Finding(Strict):
    id: str = Field(pattern=_ID)
    statement: str = Field(min_length=10)
    figures: tuple[str, ...] = ()
    locator: str = ""
    # Only for users who load licensed verbatim text; the shipped store has none.
    quote: str | None = None
    # The patients the finding is about, as names from criteria/_vocabulary.yaml (chordoma, bone_metastasis ...):
    # a letter cites it only for a case in one of them. Empty: it applies to any patient the criterion covers.
    populations: tuple[str, ...] = ()
    # The plan types the finding speaks for (a Medicare statute speaks for Medicare and Medicare Advantage):
    # a letter to another kind of plan does not quote it. Empty: any plan.
    plans: tuple[
        Literal["commercial", "erisa", "aca_individual", "medicare", "medicare_advantage", "medicaid"], ...
    ] = ()


class Source(Strict):
    id: str = Field(pattern=_ID)
    type: SourceType
    tier: Tier
    title: str
    authors: tuple[str, ...] = ()
    publisher: str | None = None
    journal: str | None = None
    year: int | None = Field(default=None, ge=1900, le=2100)
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$")
    pmid: str | None = Field(default=None, pattern=r"^\d{1,9}$")
    pmcid: str | None = Field(default=None, pattern=r"^PMC\d+$")
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    version: str | None = None
    accessed: date
    license: str
    notes: str | None = None
    findings: tuple[Finding, ...] = Field(min_length=1)

    @field_validator("findings")
    @classmethod
    def _unique_findings(cls, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        seen: set[str] = set()
        for f in findings:
            if f.id in seen:
                raise ValueError(f"duplicate finding id '{f.id}'")
            seen.add(f.id)
        return findings

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def reference(self) -> str:
        """A full bibliographic entry (AMA-like) for the references list."""
        parts: list[str] = []
        if self.authors:
            names = list(self.authors)
            parts.append((", ".join(names[:6]) + (", et al" if len(names) > 6 else "")) + ".")
        parts.append(self.title.rstrip(".") + ".")
        venue = self.journal or self.publisher
        if venue:
            bits = venue.rstrip(".")
            if self.year:
                bits += f". {self.year}"
                if self.volume:
                    bits += f";{self.volume}"
                    if self.issue:
                        bits += f"({self.issue})"
                if self.pages:
                    bits += f":{self.pages}"
            elif self.version:
                bits += f". {self.version}"
            parts.append(bits + ".")
        elif self.year:
            parts.append(f"{self.year}.")
        if self.version and self.journal is None and self.year:
            parts.append(f"{self.version}.")
        if self.doi:
            parts.append(f"doi:{self.doi}.")
        if self.pmid:
            parts.append(f"PMID: {self.pmid}.")
        if self.url and not self.doi:
            parts.append(f"{self.url} (accessed {self.accessed.isoformat()}).")
        return " ".join(parts)


# Numbers as they appear in prose: 130.4, 1,000, 0.05, 5%, 20206 ...
FIGURE_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def figure_numbers(text: str) -> list[str]:
    return [n.replace(",", "") for n in FIGURE_NUMBER.findall(text)]


class CitationIssue(Strict):
    level: Literal["error", "warning"]
    where: str
    problem: str


def check_source(src: Source, today: date, stale_days: int = 730) -> list[CitationIssue]:
    """Per-source warnings: missing locators, figures absent from statements, stale access dates."""
    issues: list[CitationIssue] = []
    if not (src.doi or src.pmid or src.url):
        issues.append(CitationIssue(level="error", where=src.id, problem="has no DOI, PMID or URL"))
    if (today - src.accessed).days > stale_days:
        issues.append(
            CitationIssue(
                level="warning",
                where=src.id,
                problem=f"accessed {src.accessed.isoformat()}, more than two years ago: re-check the source",
            )
        )
    for f in src.findings:
        where = f"{src.id}.{f.id}"
        if not f.locator:
            issues.append(CitationIssue(level="warning", where=where, problem="has no locator"))
        statement_numbers = set(figure_numbers(f.statement))
        listed: set[str] = set()
        for fig in f.figures:
            numbers = figure_numbers(fig)
            listed.update(numbers)
            if any(n not in statement_numbers for n in numbers) or (not numbers and fig not in f.statement):
                issues.append(
                    CitationIssue(
                        level="error", where=where, problem=f"figure '{fig}' does not appear in its statement"
                    )
                )
        unlisted = sorted(statement_numbers - listed, key=lambda n: (len(n), n))
        if unlisted:
            issues.append(
                CitationIssue(
                    level="warning",
                    where=where,
                    problem=f"statement carries {', '.join(unlisted)} but its figures do not list them",
                )
            )
    return issues
