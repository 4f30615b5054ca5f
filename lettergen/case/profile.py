"""The practice profile: the letterhead, the signer and the house style, kept once instead of in every case.

A profile is a TOML file (read with :mod:`tomllib`) of three tables, every key optional::

    [practice]  organization, address, phone, fax, logo (a PNG or SVG file)
    [signer]    name, credentials, specialty, npi, signature (a PNG or SVG file)
    [letter]    date_style (us | iso), references (before-signature | after-signature)

It is found by :func:`find_profile`: the path given (``--profile FILE``), else ``LETTERGEN_PROFILE`` (set and
empty: no profile at all), else ``profile.toml`` in lettergen's config folder (``$XDG_CONFIG_HOME/lettergen``
or ``~/.config/lettergen``) when there is one. A case's ``provider`` block (and its ``letter.date_style``)
overrides the profile field by field: a key the case leaves out, or sets to null, takes the profile's value
(:func:`fill_mapping` before the case is validated, :func:`fill_case` for a case already built).

Unknown keys are refused, values are held to the case file's rules (one line, no control characters, an NPI
with its check digit), image paths are read relative to the profile and must be PNG or SVG files of at most
1 MB. Any problem is a :class:`~lettergen.errors.ProfileError` naming the file and the key (exit 2). The
images are layout: the HTML and PDF letters show them, md and txt leave them out, and no text comes from them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lettergen.errors import ProfileError
from lettergen.files import config_dir
from lettergen.yamlio import read_bytes

if TYPE_CHECKING:
    from lettergen.case.model import Case

ENV = "LETTERGEN_PROFILE"
FILE_NAME = "profile.toml"
MAX_IMAGE_BYTES = 1024 * 1024

# The case's provider fields a profile fills, and the table of the profile that holds each.
PROVIDER_FIELDS = {
    "organization": "practice",
    "address": "practice",
    "phone": "practice",
    "fax": "practice",
    "name": "signer",
    "credentials": "signer",
    "specialty": "signer",
    "npi": "signer",
}


@dataclass(frozen=True)
class Image:
    """A logo or signature image, checked: its type, bytes and sha256."""

    mime: str  # image/png or image/svg+xml
    data: bytes
    sha256: str

    @property
    def data_uri(self) -> str:
        import base64

        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class Profile:
    """A profile as read and checked. ``provider`` holds the provider fields it sets (and only those)."""

    file: str
    sha256: str
    provider: dict[str, str]
    date_style: str | None = None
    references: str = "before-signature"
    logo: Image | None = None
    signature: Image | None = None

    def hashes(self) -> dict[str, str]:
        """What a ledger records of the profile (``data_files``): the TOML file's sha256 and each image's."""
        out = {"profile": self.sha256}
        if self.logo is not None:
            out["profile:logo"] = self.logo.sha256
        if self.signature is not None:
            out["profile:signature"] = self.signature.sha256
        return out


def default_path() -> Path:
    """Where lettergen looks for a profile when neither ``--profile`` nor ``LETTERGEN_PROFILE`` names one."""
    return config_dir() / FILE_NAME


def find_profile(explicit: str | Path | None = None) -> Path | None:
    """The profile to use: ``explicit`` (``--profile``), else ``LETTERGEN_PROFILE`` (set but empty: none), else
    the config folder's ``profile.toml`` if it exists; None when there is none. A file named by the option or
    the variable must exist (:func:`load_profile` says so when it does not)."""
    if explicit is not None and str(explicit):
        return Path(explicit)
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    path = default_path()
    return path if path.exists() else None


def resolve_profile(explicit: str | Path | None = None) -> Profile | None:
    """:func:`find_profile`, read and checked."""
    path = find_profile(explicit)
    return load_profile(path) if path is not None else None


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile; raises ProfileError naming the file and the key."""
    path = Path(path)
    file = str(path)

    def error(_file: str, key: str, problem: str) -> ProfileError:
        return ProfileError(file, key, problem)

    import tomllib  # here, not at the top: `lettergen check` without a profile needs neither it nor the schema

    from pydantic import ValidationError

    from lettergen.case._profile_schema import ProfileFile
    from lettergen.yamlio import first_error

    raw = read_bytes(path, error)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProfileError(file, "", f"is not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(file, "", f"is not valid TOML: {exc}") from None
    try:
        parsed = ProfileFile.model_validate(data)
    except ValidationError as exc:
        key, problem = first_error(exc)
        raise ProfileError(file, key, problem) from None
    provider: dict[str, str] = {}
    for name, table in PROVIDER_FIELDS.items():
        value = getattr(getattr(parsed, table), name)
        if value is not None:
            provider[name] = value
    folder = path.parent
    return Profile(
        file=file,
        sha256=hashlib.sha256(raw).hexdigest(),
        provider=provider,
        date_style=parsed.letter.date_style,
        references=parsed.letter.references,
        logo=_image(file, "practice.logo", folder, parsed.practice.logo),
        signature=_image(file, "signer.signature", folder, parsed.signer.signature),
    )


def _image(file: str, key: str, folder: Path, name: str | None) -> Image | None:
    if name is None:
        return None
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = folder / path

    def error(image: str, _key: str, problem: str) -> ProfileError:
        return ProfileError(file, key, f"{image}: {problem}")

    data = read_bytes(path, error)
    if len(data) > MAX_IMAGE_BYTES:
        raise error(str(path), "", f"is larger than {MAX_IMAGE_BYTES // 1024} KB")
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        mime = "image/png"
    else:
        problem = _svg_problem(data)
        if problem:
            raise error(str(path), "", problem)
        mime = "image/svg+xml"
    return Image(mime=mime, data=data, sha256=hashlib.sha256(data).hexdigest())


_SVG = "{http://www.w3.org/2000/svg}"


def _svg_problem(data: bytes) -> str | None:
    """Why ``data`` is not an SVG image a letter may show, or None. An SVG is refused when it declares a DTD
    (entities), runs a script, embeds other markup or points at anything outside itself."""
    import xml.etree.ElementTree as ET  # DTDs are refused before parsing: no entity is ever expanded

    not_an_image = "must be a PNG or SVG image"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return not_an_image
    if "<svg" not in text:
        return not_an_image
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        return "is an SVG with a DOCTYPE or entities: save it without them"
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return "is not a well-formed SVG file"
    if root.tag not in (f"{_SVG}svg", "svg"):
        return not_an_image
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""
        if tag in ("script", "foreignobject", "iframe"):
            return f"is an SVG with a <{tag}> element: a letter's image may hold only drawing"
        for attr, value in element.attrib.items():
            name = attr.rsplit("}", 1)[-1].lower()
            if name.startswith("on"):
                return f"is an SVG with an event handler ({name}): a letter's image may hold only drawing"
            if name in ("href", "src") and not value.strip().startswith(("#", "data:")):
                return "is an SVG that links to another file or address: embed what it shows"
    return None


def fill_mapping(data: dict[str, Any], profile: Profile | None) -> dict[str, Any]:
    """A case mapping (or a request body) with the profile's values where the case leaves a provider field or
    ``letter.date_style`` out or null. The case is not changed; a block that is not a mapping is left for
    the case's own validation to refuse."""
    if profile is None:
        return data
    out = dict(data)
    provider = out.get("provider")
    if provider is None:
        provider = {}
    if isinstance(provider, dict):
        merged = dict(provider)
        for key, value in profile.provider.items():
            if merged.get(key) is None:
                merged[key] = value
        if merged or "provider" in out:
            out["provider"] = merged
    if profile.date_style is not None:
        letter = out.get("letter")
        if letter is None:
            letter = {}
        if isinstance(letter, dict) and letter.get("date_style") is None:
            out["letter"] = {**letter, "date_style": profile.date_style}
    return out


def fill_case(case: Case, profile: Profile | None) -> Case:
    """:func:`fill_mapping` for a case already validated: the fields the case did not set take the profile's
    values (pydantic's ``model_fields_set`` tells set from default)."""
    if profile is None:
        return case
    update: dict[str, Any] = {}
    provider = case.provider
    missing = {
        k: v for k, v in profile.provider.items() if k not in provider.model_fields_set or getattr(provider, k) is None
    }
    if missing:
        update["provider"] = provider.model_copy(update=missing)
    if profile.date_style is not None and "date_style" not in case.letter.model_fields_set:
        update["letter"] = case.letter.model_copy(update={"date_style": profile.date_style})
    return case.model_copy(update=update) if update else case


TEMPLATE = """\
# lettergen practice profile: the letterhead, the signer and the house style of every letter.
#
# lettergen reads, first found: the file given with --profile FILE; the file named by LETTERGEN_PROFILE
# (set but empty: no profile); $XDG_CONFIG_HOME/lettergen/profile.toml (~/.config/lettergen/profile.toml).
# A case's `provider` block overrides any of these, key by key; a key the case leaves out takes the value here.
# Every key is optional and unknown keys are refused. Remove the "# " before a key to set it.
# Image paths are relative to this file; images show in HTML and PDF letters only (md and txt leave them out).

[practice]
# organization = "Riverside Orthopaedic Oncology Clinic"   # the letterhead's first line
# address = "100 Example Way, Springfield, ST 00000"
# phone = "555-0100"
# fax = "555-0101"
# logo = "logo.png"                 # PNG or SVG, at most 1 MB; shown at the right of the letterhead

[signer]
# name = "A. Example"
# credentials = "MD"
# specialty = "Orthopaedic Oncology"
# npi = "1234567893"                # 10 digits with a valid check digit
# signature = "signature.png"       # PNG or SVG, at most 1 MB; shown above the signature line

[letter]
# date_style = "us"                 # header dates: us (11/21/2026) or iso (2026-11-21)
# references = "before-signature"   # the references list before the signature, or "after-signature"
"""
