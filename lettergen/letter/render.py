"""Rendering: Jinja templates (sandboxed, StrictUndefined) lay out sentences that carry ids.

Every sentence a template emits goes through the ``say`` filter (a claim: ``{{ claim | say }}``) or
the ``S`` filter block (structural wording: ``{% filter S("id") %}...{% endfilter %}``). Each records
the sentence and leaves a placeholder in a *skeleton*; the final text is the skeleton with every
placeholder replaced by its sentence, escaped for the format. Polishing replaces sentence texts by id
and assembles again, so the layout can never change. Helpers are filters rather than functions or
macros because Jinja calls a filter directly, where a call goes through the sandbox's checks and a
macro or ``{% call %}`` block builds a Macro object each time.

Nothing else a template prints is prose. Text outside a recorded sentence is layout: once the format's markup
is stripped, each line and each piece between two sentences must be a heading or field label listed in
``templates/labels.yaml`` for the letter's type (or under ``common``), or hold no letter or digit; anything
else fails the render with a DataError naming the template file and line (lettergen.letter.labels). A heading whose
words are data (a code and its label) is a recorded sentence too: ``{{ words | heading("header.heading.<code>",
level) }}``, laid out as ``h`` lays out a label.

Case text only ever reaches templates as values: it is data, never template source.
"""

from __future__ import annotations

import os
import re
import types
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from lettergen.errors import DataError, UsageError
from lettergen.knowledge.store import KnowledgeBase, data_dir
from lettergen.letter.claims import Claim, Material
from lettergen.letter.labels import check_layout, load_labels
from lettergen.letter.layout import CLOSE, OPEN, Fmt, iso, linked, long_date, numeric_date, squash

Format = Literal["md", "txt", "html"]
TEXT_FORMATS: tuple[str, ...] = ("md", "txt", "html")
LETTER_TYPES: tuple[str, ...] = ("lmn", "appeal", "external_review", "peer_to_peer", "determination")

# Runs of three or more newlines, written with a literal prefix so that the regex engine searches for it
# rather than trying the pattern at every character.
_BLANK_RUN = re.compile("\n\n\n+")


@dataclass(slots=True)
class Sentence:
    """One sentence of a letter, with what it rests on. A plain dataclass: a letter builds some sixty, and
    what it is built from is the recorder's own typed values; a ledger read back is validated by pydantic
    (which rejects unknown keys, below)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    id: str
    text: str
    kind: Literal["claim", "structural"]
    claims: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    origin: Literal["template", "polished", "fallback"] = "template"


class Letter(BaseModel):
    """A rendered letter: its skeleton, its sentences, and the references in citation order."""

    model_config = ConfigDict(extra="forbid")

    type: str
    format: str
    template: str
    skeleton: str
    sentences: list[Sentence]
    references: list[str]

    @property
    def text(self) -> str:
        return assemble(self.skeleton, self.sentences, self.format)

    def sentence(self, sid: str) -> Sentence:
        return next(s for s in self.sentences if s.id == sid)


def assemble(skeleton: str, sentences: list[Sentence], fmt: str, *, links: bool = False) -> str:
    """The skeleton with every placeholder (OPEN, a non-empty id, CLOSE) replaced by its sentence, escaped
    in html; a stray mark stays as it is. With ``links`` (html), the DOIs and URLs of the references become
    links (:func:`lettergen.letter.layout.linked`): the words stay the same, only markup is added.

    Split on the opening mark rather than substituted by a regex with a Python callback per match (a letter
    has some sixty); a test holds the two equal."""
    by_id: dict[str, str] = {s.id: s.text for s in sentences}
    if fmt == "html":
        by_id = {
            sid: str(linked(text) if links and sid.startswith("reference.") else escape(text))
            for sid, text in by_id.items()
        }
    parts = skeleton.split(OPEN)
    out = [parts[0]]
    for part in parts[1:]:
        sid, close, rest = part.partition(CLOSE)
        if not (close and sid):  # no placeholder here: a stray mark is kept, as the pattern keeps it
            out += (OPEN, part)
            continue
        out += (by_id[sid], rest)
    return "".join(out)


def citation_marker(numbers: list[int]) -> str:
    return "[" + ", ".join(str(n) for n in numbers) + "]"


def _with_marker(text: str, marker: str) -> str:
    """Put the citation marker before the sentence's final punctuation: 'x (p = 0.05) [3].'"""
    if text and text[-1] in ".?!":
        return f"{text[:-1]} {marker}{text[-1]}"
    return f"{text} {marker}"


@dataclass(frozen=True, slots=True)
class LetterOptions:
    """What the practice profile and the command line choose of a letter's layout (the template's
    ``options``): images are layout, never text; the references' place; the fax cover page (PDF), whose
    sentences are recorded like every other, ``cover_pages`` the count it prints (the PDF's, see
    lettergen.api.finish)."""

    logo: bool = False
    signature_image: bool = False
    references_after: bool = False
    cover: bool = False
    cover_pages: int = 1


@dataclass
class _Recorder:
    fmt: str
    sentences: list[Sentence] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)

    def _add(self, s: Sentence) -> Markup | str:
        if s.id in self.ids:
            raise DataError("templates", s.id, "sentence id used twice in one letter")
        self.ids.add(s.id)
        self.sentences.append(s)
        # Markup only where autoescaping is on (html); in md and txt it would change nothing but the cost.
        mark = f"{OPEN}{s.id}{CLOSE}"
        return Markup(mark) if self.fmt == "html" else mark

    def say(self, claim: Claim) -> Markup | str:
        numbers: list[int] = []
        for cid in claim.citations:
            src = cid.partition(".")[0]
            if src not in self.sources:
                self.sources.append(src)
            n = self.sources.index(src) + 1
            if n not in numbers:
                numbers.append(n)
        text = _with_marker(claim.text, citation_marker(numbers)) if numbers else claim.text
        return self._add(
            Sentence(
                id=claim.id,
                text=text,
                kind="claim",
                claims=[claim.id],
                citations=list(claim.citations),
                facts=list(claim.facts),
                origin="template",
            )
        )

    def structural(self, sid: str, content: Any) -> Markup | str:
        text = Markup(content).unescape() if self.fmt == "html" else str(content)
        return self._add(
            Sentence(
                id=str(sid),
                text=" ".join(text.split()),
                kind="structural",
                claims=[],
                citations=[],
                facts=[],
                origin="template",
            )
        )

    def heading(self, layout: Fmt, sid: str, content: Any, level: int) -> Markup:
        # A block's content is markup in html (escaped already); an expression's value is a plain string.
        text = content.unescape() if self.fmt == "html" and isinstance(content, Markup) else str(content)
        words = layout.heading_words(" ".join(text.split()), level)
        mark = self._add(
            Sentence(id=str(sid), text=words, kind="structural", claims=[], citations=[], facts=[], origin="template")
        )
        return layout.h_around(str(mark), level, len(words))


# The recorder of the render under way in this thread (or task). Filters find it here rather than in
# the template context, so that "_macros.j2" is imported without context: Jinja then builds that module
# once instead of once per template per letter.
_RECORDER: ContextVar[_Recorder] = ContextVar("lettergen_recorder")


def _structural_filter(content: Any, sid: str) -> Markup | str:
    """``{% filter S("id") %}words{% endfilter %}``: a structural sentence, recorded by this render's recorder."""
    return _RECORDER.get().structural(sid, content)


def _heading_filter(layout: Fmt) -> Any:
    """``{{ words | heading("id", level) }}``: a heading whose words are data (a code and its label), recorded as a
    structural sentence and laid out as ``h`` lays out a label. In txt the first two levels are capitalised,
    so the sentence's text is the capitalised words, as the letter shows them."""

    def heading(content: Any, sid: str, level: int) -> Markup:
        return _RECORDER.get().heading(layout, sid, content, level)

    return heading


def _say_filter(claim: Claim) -> Markup | str:
    """``{{ claim | say }}``: a claim sentence, recorded with its citation marker."""
    return _RECORDER.get().say(claim)


_METHODS = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with its per-attribute safety verdict memoised.

    Jinja's checks (:func:`jinja2.sandbox.is_internal_attribute`, ``modifies_known_mutable`` and the
    underscore rule) depend only on the object's type and the attribute name, so the verdict for a
    (type, name) pair is computed once. Rendering a letter makes several hundred such checks; this
    takes them off the hot path without loosening the sandbox.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._safe: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        verdict = self._safe.get(key)
        if verdict is None:
            verdict = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return verdict

    def getattr(self, obj: Any, attribute: str) -> Any:
        # The common case, a field already judged safe for this type whose value is not a method, is
        # answered here; everything else (methods, which include str.format and its sandboxed wrapper,
        # item lookups, unsafe and missing attributes) takes Jinja's own path.
        if self._safe.get((type(obj), attribute)):
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                return super().getattr(obj, attribute)
            if not isinstance(value, _METHODS):
                return value
        return super().getattr(obj, attribute)


@cache
def _env(root: str, fmt: str) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=fmt == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    f = Fmt(fmt)
    env.globals.update(fmt=f, squash=squash)
    env.filters.update(S=_structural_filter, say=_say_filter, iso=iso, long_date=long_date, numeric_date=numeric_date)
    env.filters.update(
        heading=_heading_filter(f), h=f.h, bold=f.bold, para=f.para, lines=f.lines, ul=f.ul, ol=f.ol, li=f.li
    )
    env.filters.update(running=f.running)
    return env


def _layout_macros(env: ImmutableSandboxedEnvironment) -> Any:
    """``_macros.j2`` as a module, the global ``x`` of every template.

    Built once per environment, without context, as ``{% import "_macros.j2" as x %}`` builds it: that
    statement in each template and include asked Jinja for the module again in every letter (a template
    lookup and a set difference over the globals, each time). A template that still imports it gets the
    same module. Without ``_macros.j2`` (a data folder of one's own), ``x`` is undefined, as it was."""
    try:
        return env.get_template("_macros.j2").module
    except TemplateNotFound:
        return env.undefined(name="x")


def templates_dir() -> Path:
    return _templates_dir(os.environ.get("LETTERGEN_DATA"))


@cache
def _templates_dir(_data_env: str | None) -> Path:
    # Keyed on the variable data_dir() reads, so that a changed LETTERGEN_DATA is seen: a path built once per
    # value, not once per letter.
    return data_dir() / "templates"


@cache
def _template_name(root: str, letter_type: str, fmt: str) -> str | None:
    """The template for a letter type and format (a format-specific one first), or None; looked up once."""
    for name in (f"{letter_type}.{fmt}.j2", f"{letter_type}.j2"):
        if (Path(root) / name).exists():
            return name
    return None


_NO_OPTIONS = LetterOptions()


def check_document(document: str, body: str, letter_type: str, template: str) -> None:
    """The rule of :func:`render_letter` for a standalone document (``_document.html.j2``) around a letter's
    html ``body``, which render_letter has checked: the document adds no text outside its <head> but labels."""
    root = str(templates_dir())
    check_layout(
        document.replace(body, f"{OPEN}letter{CLOSE}", 1),
        root=root,
        template=template,
        letter_type=letter_type,
        fmt="html",
        labels=load_labels(root, LETTER_TYPES),
    )


def render_letter(
    material: Material,
    kb: KnowledgeBase,
    letter_type: str,
    fmt: str,
    *,
    options: LetterOptions | None = None,
    **extra: Any,
) -> Letter:
    if letter_type not in LETTER_TYPES:
        raise UsageError(f"--type: unknown letter type '{letter_type}' (choose from {', '.join(LETTER_TYPES)})")
    if fmt not in TEXT_FORMATS:
        raise UsageError(f"--format: '{fmt}' is not a text format ({', '.join(TEXT_FORMATS)})")
    root = templates_dir()
    name = _template_name(str(root), letter_type, fmt)
    if name is None:
        raise UsageError(f"--type: no template for letter type '{letter_type}' yet")
    rec = _Recorder(fmt=fmt)
    env = _env(str(root), fmt)
    token = _RECORDER.set(rec)
    try:
        if env.globals.get("x") is None:  # this environment's first letter
            env.globals["x"] = _layout_macros(env)
        template = env.get_template(name)
        skeleton = template.render(
            m=material,
            case=material.case,
            kb=kb,
            references=lambda: [kb.reference(s) for s in rec.sources],
            options=options or _NO_OPTIONS,
            **extra,
        )
    except TemplateError as exc:  # a broken template is a data problem, not the user's input
        raise DataError(f"templates/{name}", "", f"template error: {exc}") from None
    finally:
        _RECORDER.reset(token)
    skeleton = _BLANK_RUN.sub("\n\n", skeleton).strip() + "\n"
    rootname = str(root)
    check_layout(
        skeleton,
        root=rootname,
        template=name,
        letter_type=letter_type,
        fmt=fmt,
        labels=load_labels(rootname, LETTER_TYPES),
    )
    return Letter(
        type=letter_type,
        format=fmt,
        template=name,
        skeleton=skeleton,
        sentences=rec.sentences,
        references=list(rec.sources),
    )
