"""The library surface: load a case, decide, draft, validate. The CLI and the HTTP service call these."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from lettergen.case.load import parse_case
from lettergen.case.model import Case
from lettergen.decision.engine import Decision, check_facts, decide
from lettergen.errors import CaseError, NothingToDraft, UsageError, ValidationFailed
from lettergen.knowledge.citations import CitationIssue
from lettergen.knowledge.store import KnowledgeBase, load_kb
from lettergen.yamlio import read_text

if TYPE_CHECKING:  # drafting modules load on first draft, so that `lettergen check` starts faster
    from lettergen.case.profile import Profile
    from lettergen.decision.ncci import NcciReport
    from lettergen.letter.render import Letter
    from lettergen.provenance.ledger import Ledger, PolishRecord
    from lettergen.validation.rules import ValidationResult

EXTENSIONS = {"md": "md", "txt": "txt", "html": "html", "pdf": "pdf", "docx": "docx", "fhir": "fhir.json"}
# The letters a fax cover page may go in front of: those sent to the payer (draft --cover, PDF only).
COVER_TYPES = ("lmn", "appeal", "external_review")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class LoadedCase:
    """A case as read from its file: the model, the file's sha256 (for the ledger) and its name."""

    case: Case
    sha256: str
    file: str


class Polished(NamedTuple):
    """What a polisher gives back: the letter with its sentences reworded (or not), the polish record for the
    ledger, the prompt's id, and the validator's verdict on the polished letter when it has one (None: the
    caller validates)."""

    letter: Letter
    record: PolishRecord
    prompt: str | None
    validation: ValidationResult | None


class Polish(Protocol):
    """What :func:`draft` and :func:`finish` take as ``polish=``: lettergen.polish.polisher.Polisher, or a stand-in of
    one's own (every polished sentence is still held to the validator by :func:`finish`)."""

    def polish(self, letter: Letter, case: Case, decision: Decision, kb: KnowledgeBase) -> Polished: ...


def load_case(
    source: str | Path, *, kb: KnowledgeBase | None = None, text: str | None = None, profile: Profile | None = None
) -> LoadedCase:
    """Read and check a case file (YAML, JSON or FHIR Bundle); raises CaseError naming file and field.

    With a practice ``profile`` (:func:`lettergen.case.profile.resolve_profile`), the provider fields and the
    ``letter.date_style`` the case leaves out come from it before the case is checked, so that a case may
    leave its ``provider`` block out altogether; what the case gives wins, field by field."""
    file = str(source)
    if text is None:
        text = read_text(Path(source), CaseError)
    # An error names a fact by its id only when this knowledge base declares it (else the installed one's).
    case = parse_case(text, file, kb.questions if kb is not None else None, profile)
    check_facts(case, kb or load_kb(), file)
    return LoadedCase(case=case, sha256=_sha256(text), file=file)


def check(
    case: Case, kb: KnowledgeBase | None = None, letter_type: str | None = None, letter_date: date | None = None
) -> Decision:
    """The deterministic decision for every requested code; with a denial, the appeal deadline too
    (for ``letter_type`` when it names the appeal being drafted). ``letter_date`` is the day age is counted
    to when no service line gives a date of service."""
    kb = kb or load_kb()
    decision = decide(case, kb, letter_date)
    if case.denial is not None:
        from lettergen.decision.deadlines import compute_deadline

        deadline = compute_deadline(case, kb, letter_type=letter_type)
        decision = decision.model_copy(update={"deadline": deadline})
    return decision


@dataclass
class Draft:
    case: Case
    decision: Decision
    letter: Letter
    content: bytes
    ledger: Ledger
    validation: ValidationResult

    @property
    def text(self) -> str:
        return self.letter.text

    @property
    def notes(self) -> str:
        """The staff note (lettergen.letter.notes): what the office needs and the payer must not read."""
        return self.ledger.staff_note

    def filenames(self) -> tuple[str, str]:
        ext = EXTENSIONS[self.ledger.format]
        stem = f"{self.case.case_id}.{self.letter.type}"
        return f"{stem}.{ext}", f"{stem}.ledger.json"

    def notes_filename(self) -> str:
        return f"{self.case.case_id}.{self.letter.type}.notes.md"

    def replaces(self, out_dir: Path) -> str | None:
        """The letter file of another format whose ledger :meth:`write` would replace in ``out_dir``, if any:
        every format of a letter shares one ledger name (``<case_id>.<type>.ledger.json``)."""
        letter_name, ledger_name = self.filenames()
        try:
            previous = json.loads((out_dir / ledger_name).read_bytes()).get("letter_file")
        except (OSError, ValueError, AttributeError):
            return None
        return previous if isinstance(previous, str) and previous != letter_name else None

    def write(self, out_dir: Path, *, durable: bool = True) -> tuple[Path, Path]:
        """Write the letter and its ledger, all-or-nothing (``durable``: see ``files.write_outputs``)."""
        letter_name, ledger_name = self.filenames()
        paths = (out_dir / letter_name, out_dir / ledger_name)
        from lettergen.files import write_outputs
        from lettergen.provenance.ledger import ledger_json

        ledger = ledger_json(self.ledger).encode("utf-8")
        outputs = {
            paths[0]: self.content,
            paths[1]: ledger,
            out_dir / self.notes_filename(): self.notes.encode("utf-8"),
        }
        write_outputs(outputs, durable=durable)
        return paths


def check_knowledge(kb: KnowledgeBase | None = None, today: date | None = None) -> list[CitationIssue]:
    """The knowledge base's integrity findings (``lettergen citations check``), including the citations of
    the appeal-deadline rules, which live in code rather than in the criteria files."""
    from lettergen.decision.deadlines import all_citations

    kb = kb or load_kb()
    return kb.check(today or date.today(), {"lettergen/decision/deadlines.py": all_citations()})


def check_ncci(case: Case, db: Path | None = None, letter_date: date | None = None) -> NcciReport | None:
    """The NCCI edits (CMS PTP pairs and MUEs) among the case's requested codes, from the database the office
    imported with ``lettergen kb import-ncci`` (``db``, default: the user's data folder); None where none has
    been imported. For the office only: no verdict depends on it, and no payer letter says it."""
    from lettergen.knowledge.ncci import open_db

    opened = open_db(db)
    if opened is None:
        return None
    from lettergen.decision.ncci import ncci_report  # only where a database was imported: its models cost a start

    with opened:
        services = [(s.code, s.units, s.date_of_service) for s in case.services]
        return ncci_report(services, opened, resolve_date(case, letter_date))


def resolve_date(case: Case, letter_date: date | None) -> date:
    return letter_date or case.letter.date or date.today()


def check_format(fmt: str) -> None:
    """Refuse an output format lettergen cannot write (the CLI, a batch and :func:`stage` ask before any work)."""
    if fmt not in EXTENSIONS:
        raise UsageError(f"--format: unknown format '{fmt}' (choose from {', '.join(EXTENSIONS)})")


def render_format(fmt: str) -> str:
    """The format a letter is rendered in before conversion: pdf and docx start from html, fhir from txt."""
    return fmt if fmt in ("md", "txt", "html") else ("html" if fmt in ("pdf", "docx") else "txt")


def draft(
    loaded: LoadedCase | Case,
    *,
    letter_type: str | None = None,
    fmt: str = "md",
    letter_date: date | None = None,
    kb: KnowledgeBase | None = None,
    polish: Polish | None = None,
    strict: bool = True,
    voice: str = "physician",
    redact_ledger: bool = False,
    decision: Decision | None = None,
    ncci: NcciReport | None = None,
    profile: Profile | None = None,
    cover: bool = False,
) -> Draft:
    """Decide and draft one letter. With ``strict`` a letter that fails validation raises ValidationFailed.

    ``redact_ledger`` stores hashes in place of the patient identifiers in the ledger (see lettergen.provenance.redact).
    ``decision`` is :func:`check`'s answer for this case and letter, when the caller has it already (one
    decision, many letter types or formats); without it the case is decided here. ``ncci`` is
    :func:`check_ncci`'s report, for the staff note only.
    ``profile`` is the practice profile: the provider fields the case did not set, the logo and signature
    images (html, pdf), the references' place; its hashes go into the ledger's ``data_files``. ``cover`` puts a
    fax cover page in front of a PDF payer letter.
    """
    staged = stage(
        loaded,
        letter_type=letter_type,
        fmt=fmt,
        letter_date=letter_date,
        kb=kb,
        voice=voice,
        decision=decision,
        ncci=ncci,
        profile=profile,
        cover=cover,
    )
    return finish(staged, polish=polish, strict=strict, redact_ledger=redact_ledger)


@dataclass
class Staged:
    """A decided case and its template letter: :func:`draft` up to the polish (see :func:`finish`)."""

    loaded: LoadedCase
    kb: KnowledgeBase
    decision: Decision
    letter: Letter
    fmt: str
    when: date
    notes: str = ""
    profile: Profile | None = None
    cover: bool = False


def stage(
    loaded: LoadedCase | Case,
    *,
    letter_type: str | None = None,
    fmt: str = "md",
    letter_date: date | None = None,
    kb: KnowledgeBase | None = None,
    voice: str = "physician",
    decision: Decision | None = None,
    ncci: NcciReport | None = None,
    profile: Profile | None = None,
    cover: bool = False,
) -> Staged:
    """The first half of :func:`draft`: decide and render the template letter (no model, no I/O).

    Split out so that a polishing pool can render the next letters while the model answers the current
    ones (lettergen.polish.pool.polish_many)."""
    from lettergen.letter.appeals import APPEAL_TYPES, PATIENT_VOICE_TYPES, build_appeal
    from lettergen.letter.claims import build_material, code_word
    from lettergen.letter.notes import staff_note
    from lettergen.letter.render import LetterOptions, render_letter

    if isinstance(loaded, Case):
        loaded = LoadedCase(case=loaded, sha256=_sha256(loaded.model_dump_json()), file="case")
    if profile is not None:
        from lettergen.case.profile import fill_case

        filled = fill_case(loaded.case, profile)
        if filled is not loaded.case:
            loaded = LoadedCase(case=filled, sha256=loaded.sha256, file=loaded.file)
    kb = kb or load_kb()
    case = loaded.case
    ltype = letter_type or case.letter.type
    when = resolve_date(case, letter_date)
    answers_denial = ltype in APPEAL_TYPES
    if answers_denial and case.denial is None:
        raise UsageError(f"--type {ltype}: the case has no denial block to answer")
    check_format(fmt)
    if voice not in ("physician", "patient"):
        raise UsageError(f"--voice: '{voice}' is not physician or patient")
    if cover and fmt != "pdf":
        raise UsageError(f"--cover: a fax cover page is for --format pdf, not {fmt}")
    if cover and ltype not in COVER_TYPES:
        raise UsageError(f"--cover: a fax cover page goes with a payer letter ({', '.join(COVER_TYPES)}), not {ltype}")
    if voice == "patient" and ltype not in PATIENT_VOICE_TYPES:
        raise UsageError(
            f"--voice patient: a letter of type {ltype} has no patient voice "
            f"(only {' and '.join(PATIENT_VOICE_TYPES)} have one)"
        )
    if decision is None:
        decision = check(case, kb, letter_type=ltype if answers_denial else None, letter_date=when)
    material = build_material(case, decision, kb, when)
    if ltype == "lmn" and not material.requested:
        # A request for prior authorization that argues against itself helps nobody: say why, draft nothing.
        why = ", ".join(f"{code_word(v.code)} {v.verdict.replace('_', ' ')}" for v in material.services)
        ungrounded = [i for i, s in enumerate(case.services) if decision.service(s.code).verdict == "not_assessed"]
        add = "".join(
            f"; {code_word(case.services[i].code)} has no criteria on file: add the clinician's documented "
            f"rationale under services[{i}].rationale (statement, source, date) to request it on those grounds"
            for i in ungrounded
        )
        raise NothingToDraft(
            f"no letter drafted: no requested code meets its criteria ({why}){add}; "
            "see 'lettergen check' for what the record lacks, or draft --type determination for the internal memo"
        )
    appeal = None
    if answers_denial:
        assert decision.deadline is not None
        appeal = build_appeal(case, material, kb, decision.deadline, letter_type=ltype)
    options = LetterOptions(
        logo=profile is not None and profile.logo is not None,
        signature_image=profile is not None and profile.signature is not None,
        references_after=profile is not None and profile.references == "after-signature",
        cover=cover,
    )
    letter = render_letter(material, kb, ltype, render_format(fmt), options=options, voice=voice, ap=appeal)
    notes = staff_note(material, ltype, decision.deadline, ncci=ncci)
    return Staged(
        loaded=loaded,
        kb=kb,
        decision=decision,
        letter=letter,
        fmt=fmt,
        when=when,
        notes=notes,
        profile=profile,
        cover=cover,
    )


def finish(staged: Staged, *, polish: Polish | None = None, strict: bool = True, redact_ledger: bool = False) -> Draft:
    """The second half of :func:`draft`: polish (when asked), validate, encode, and build the ledger."""
    from lettergen.provenance.ledger import PolishRecord, build_ledger
    from lettergen.validation.rules import header_text, policy_names, validate_letter

    case, kb, decision, letter, fmt, when = (
        staged.loaded.case,
        staged.kb,
        staged.decision,
        staged.letter,
        staged.fmt,
        staged.when,
    )
    record = PolishRecord()
    prompt_id = None
    validation = None
    if polish is not None:  # a polisher may have validated the polished letter already (validation not None)
        letter, record, prompt_id, validation = polish.polish(letter, case, decision, kb)
    if staged.cover:  # the cover page counts the pages of the letter as it will be sent
        letter, changed = _count_pages(letter, case, when, staged.profile)
        if changed:
            validation = None
    if validation is None:
        validation = validate_letter(letter, case, decision, kb)
    if strict and not validation.ok:
        first = validation.errors[0]
        raise ValidationFailed(
            f"letter failed validation: rule {first.rule}: {first.sentence or ''} {first.message}".replace("  ", " "),
            validation.issues,
        )
    content = _encode(letter, fmt, case, decision, kb, when, staged.profile, staged.cover)
    ltype = letter.type
    letter_file = f"{case.case_id}.{ltype}.{EXTENSIONS[fmt]}"
    ledger = build_ledger(
        case_id=case.case_id,
        case_sha=staged.loaded.sha256,
        letter=letter,
        letter_file=letter_file,
        letter_bytes=content,
        letter_date=when.isoformat(),
        data_files=data_files(kb, staged.profile),
        decision=decision,
        header=header_text(case, when.isoformat(), decision.deadline, policy_names(decision, kb)),
        polish=record,
        validation=validation,
        prompt=prompt_id,
        staff_note=staged.notes,
    )
    if fmt != render_format(fmt):
        ledger = ledger.model_copy(update={"format": fmt})
    if redact_ledger:
        from lettergen.provenance.redact import redact_ledger as _redact

        ledger = _redact(ledger, case)
    return Draft(case=case, decision=decision, letter=letter, content=content, ledger=ledger, validation=validation)


def _encode(
    letter: Letter,
    fmt: str,
    case: Case,
    decision: Decision,
    kb: KnowledgeBase,
    when: date,
    profile: Profile | None = None,
    cover: bool = False,
) -> bytes:
    if fmt in ("md", "txt"):
        return letter.text.encode("utf-8")
    from lettergen.outputs import documents  # document formats: HTML page, PDF, DOCX, FHIR (extras imported lazily)

    return documents.encode(letter, fmt, case, decision, kb, when, profile=profile, cover=cover)


def _count_pages(letter: Letter, case: Case, when: date, profile: Profile | None) -> tuple[Letter, bool]:
    """The letter with its cover page's ``cover.pages`` sentence set to the PDF's page count, and whether it
    changed. The cover is one page whatever the number it prints, so one layout gives the count."""
    from dataclasses import replace

    from lettergen.outputs.documents import pdf_page_count

    pages = str(pdf_page_count(letter, case, when, profile=profile, cover=True))
    if letter.sentence("cover.pages").text == pages:
        return letter, False
    sentences = [replace(s, text=pages) if s.id == "cover.pages" else s for s in letter.sentences]
    return letter.model_copy(update={"sentences": sentences}), True


def data_files(kb: KnowledgeBase, profile: Profile | None = None) -> dict[str, str]:
    """sha256 of every data file a letter is built from: the knowledge base, the templates and, when one is in
    use, the practice profile (``profile``, and ``profile:logo`` and ``profile:signature`` for its images)."""
    files = dict(_template_hashes(str(kb.root), kb.hashes))
    if profile is not None:
        files.update(profile.hashes())
    return files


_TEMPLATE_HASHES: dict[str, dict[str, str]] = {}


def _template_hashes(root: str, kb_hashes: dict[str, str]) -> dict[str, str]:
    # Hashed once per process and knowledge base: templates do not change under a running process.
    cached = _TEMPLATE_HASHES.get(root)
    if cached is None:
        cached = dict(kb_hashes)
        for p in sorted((Path(root) / "templates").glob("*.j2")):
            cached[f"templates/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
        _TEMPLATE_HASHES[root] = cached
    return cached


def validate_file(letter_path: Path, ledger_path: Path) -> ValidationResult:
    """Re-check a letter (possibly edited by a person) against the ledger written with it."""
    from lettergen.provenance.ledger import read_ledger

    ledger = read_ledger(ledger_path)
    if not letter_path.name.endswith(f".{EXTENSIONS[ledger.format]}"):
        # Every format of a letter shares one ledger name, so drafting another format into the same folder
        # replaces the ledger (see Draft.replaces): say so, rather than fail the letter's checks.
        raise UsageError(
            f"{ledger_path}: is the ledger of {ledger.letter_file} (a {ledger.format} letter), not of "
            f"{letter_path.name}; draft each format into its own folder to keep each letter's ledger"
        )
    if ledger.format in ("pdf", "fhir"):
        raise UsageError(f"validate: a {ledger.format} letter cannot be edited; validate the md, txt, html or docx")
    try:
        if ledger.format == "docx":  # an editable Word letter: compare its paragraphs' text
            from lettergen.outputs.docx_out import docx_text

            text = docx_text(letter_path.read_bytes(), str(letter_path))
        else:
            text = letter_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseError(str(letter_path), "", "file not found") from None
    except (OSError, UnicodeDecodeError):
        raise CaseError(str(letter_path), "", "cannot be read as UTF-8 text") from None
    return validate_text(text, ledger)


def validate_text(text: str, ledger: Ledger) -> ValidationResult:
    """Re-check a letter's text (for a docx, its paragraphs' text) against the ledger written with it."""
    from lettergen.validation.edits import validate_edited

    if not ledger.redacted:
        return validate_edited(text, ledger)
    from lettergen.provenance.redact import pattern_for, unredact

    return validate_edited(text, unredact(ledger, text), tokens=pattern_for)
