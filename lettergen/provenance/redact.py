"""``--redact-ledger``: the ledger keeps keyed hashes in place of patient identifiers.

Every identifier of :meth:`Case.identifiers` (name, birth date, member id, address, group number, NPI,
denial reference) is replaced, wherever it occurs in the ledger (sentence texts, header, decision,
skeleton), by ``[hmac-sha256:<hex>/<words>]``: the HMAC-SHA256 of the identifier under this installation's
redaction key, and its number of words. The letter itself is not touched;
:func:`lettergen.validation.edits.validate_edited` matches a redacted sentence against the letter with each
token standing for that many words.

The key is what makes the hash one-way in practice: a birth date is one of some 45,000 days since 1900, and
a plain (or publicly salted) sha256 of each gives it back in a fraction of a second. The key is, in order:

1. ``LETTERGEN_REDACT_KEY`` (at least 16 characters; ``openssl rand -hex 32`` makes one);
2. ``LETTERGEN_REDACT_SALT``, the variable of earlier versions, read as the key;
3. the installation's key file, ``$XDG_CONFIG_HOME/lettergen/redact.key`` (``~/.config/lettergen/redact.key``
   when that variable is unset): 32 random bytes in hex, made on first use, readable by its owner only.

Whoever holds the key can check that a token stands for a given identifier (:func:`token`); nobody else can.
A ledger written by earlier versions (``[sha256:...]`` tokens) still validates.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import Any

from lettergen.case.model import Case
from lettergen.errors import EnvironmentProblem
from lettergen.provenance.ledger import Ledger

KEY_ENV = "LETTERGEN_REDACT_KEY"
SALT_ENV = "LETTERGEN_REDACT_SALT"  # the name of earlier versions, still read: as the key
MIN_KEY = 16  # characters of a key given in LETTERGEN_REDACT_KEY or read from a key file
_MAX_KEY_FILE = 4096
# [sha256:...] is the unkeyed token of earlier versions: still recognised, so that their ledgers validate.
TOKEN = re.compile(r"\[(?:hmac-)?sha256:[0-9a-f]{64}/(\d+)\]")


def key_path() -> Path:
    """Where this installation keeps its redaction key (made on first use)."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "lettergen" / "redact.key"


def redaction_key() -> bytes:
    """The key redaction hashes with: the variables first, else the installation's key file, made if missing.

    Raises :class:`EnvironmentProblem` (exit 3) when the key file cannot be made or read, is not a regular file,
    or others can read it; the message names the file and the fix, never a patient value.
    """
    given = os.environ.get(KEY_ENV, "")
    if given:
        if len(given) < MIN_KEY:
            raise EnvironmentProblem(f"{KEY_ENV}: a redaction key needs at least {MIN_KEY} characters")
        return given.encode("utf-8")
    salt = os.environ.get(SALT_ENV, "")
    if salt:
        return salt.encode("utf-8")
    path = key_path()
    for _ in range(100):
        try:
            key = _read_key(path)
        except FileNotFoundError:
            _make_key(path)  # or another process does at the same moment: either way the next read has it
            continue
        if key is not None:
            return key
        time.sleep(0.01)  # empty: a process on a file system without hard links is writing it in place
    raise EnvironmentProblem(f"{path}: the redaction key file is empty; remove it and lettergen makes a new one")


def _read_key(path: Path) -> bytes | None:
    """The key in ``path``; None while it is empty (being written by a process without hard links)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)  # a FIFO must not hang us
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise EnvironmentProblem(f"{path}: cannot read the redaction key ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EnvironmentProblem(f"{path}: the redaction key is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise EnvironmentProblem(
                f"{path}: others can read the redaction key; make it its owner's only (chmod 600 {path})"
            )
        try:
            data = os.read(fd, _MAX_KEY_FILE + 1)
        except OSError as exc:
            raise EnvironmentProblem(f"{path}: cannot read the redaction key ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    key = data.strip()
    if not key:
        return None
    if len(data) > _MAX_KEY_FILE or len(key) < MIN_KEY:
        raise EnvironmentProblem(f"{path}: not a redaction key (expected {MIN_KEY} to {_MAX_KEY_FILE} characters)")
    return key


def _make_key(path: Path) -> None:
    """Write a new random key to ``path`` unless it exists: whole or not at all, owner-only, never replacing
    a key another process made first (a hard link from a temporary file does not replace)."""
    text = (secrets.token_hex(32) + "\n").encode("ascii")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            try:
                os.write(fd, text)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: its key is the key
            except OSError:  # no hard links here: create the key in place, as exclusively
                with contextlib.suppress(FileExistsError):
                    _create_in_place(path, text)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError as exc:
        raise EnvironmentProblem(
            f"{path}: cannot make the redaction key ({exc.strerror or exc}); set {KEY_ENV} instead"
        ) from None


def _create_in_place(path: Path, text: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)


def token(value: str, key: bytes | str | None = None) -> str:
    """The redaction token of ``value``: its HMAC-SHA256 under ``key`` (the installation's by default)."""
    if key is None:
        key = redaction_key()
    raw = key.encode("utf-8") if isinstance(key, str) else key
    digest = hmac.new(raw, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"[hmac-sha256:{digest}/{len(value.split())}]"


def _replacer(identifiers: list[str], key: bytes) -> Any:
    # Longest first, so that a short identifier inside a longer one cannot split it.
    values = sorted({v for v in identifiers if v and v.strip()}, key=len, reverse=True)
    if not values:
        return lambda s: s
    tokens = {v: token(v, key) for v in values}
    # Whole words only: a short name must not eat into other words.
    rx = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + r")(?![A-Za-z0-9])")
    return lambda s: rx.sub(lambda m: tokens[m.group(0)], s)


# Keys whose values are ids, codes or enumerations, never free text: left as they are.
_KEEP = frozenset(
    {"id", "kind", "origin", "verdict", "status", "level", "rule", "code", "codes", "citations", "claims", "facts"}
    | {"sources", "format", "letter_type", "template", "policy", "case_id", "letter_file", "data_files"}
)


def _walk(node: Any, fn: Any) -> Any:
    if isinstance(node, str):
        return fn(node)
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    if isinstance(node, dict):
        return {k: v if k in _KEEP else _walk(v, fn) for k, v in node.items()}
    return node


def redact_ledger(ledger: Ledger, case: Case, key: bytes | str | None = None) -> Ledger:
    """A copy of ``ledger`` with every identifier of ``case`` replaced by its token (see :func:`token`)."""
    raw = redaction_key() if key is None else key.encode("utf-8") if isinstance(key, str) else key
    fn = _replacer(case.identifiers(), raw)
    data = _walk(json.loads(ledger.model_dump_json()), fn)
    data["redacted"] = True
    return Ledger.model_validate(data)


def pattern_for(text: str) -> re.Pattern[str] | None:
    """A regex matching ``text`` with each redaction token standing for any identifier; None without tokens."""
    text = " ".join(text.split())
    out, pos = "", 0
    for m in TOKEN.finditer(text):
        words = max(int(m.group(1)), 1)
        out += re.escape(text[pos : m.start()]) + r"\S+" + r"(?: \S+)" * (words - 1)
        pos = m.end()
    if not pos:
        return None
    return re.compile(out + re.escape(text[pos:]))


def unredact(ledger: Ledger, letter_text: str) -> Ledger:
    """Put back the identifiers a letter shows where a redacted ledger holds tokens, for re-validation.

    The ledger's skeleton and sentences give the letter as drafted with tokens in it; the words that follow
    each token's literal context in ``letter_text`` are that token's identifier. A token whose identifier
    cannot be found (the person edited around it) stays a token and matches any words of its length.
    """
    from lettergen.letter.render import assemble
    from lettergen.validation.edits import normalise

    drafted = normalise(assemble(ledger.skeleton, ledger.sentences, ledger.format), ledger.format)
    body = normalise(letter_text, ledger.format)
    values: dict[str, str] = {}
    pos = 0
    for m in TOKEN.finditer(drafted):
        before = drafted[max(pos, m.start() - 40) : m.start()]
        pos = m.end()
        if m.group(0) in values or len(before.strip()) < 4:
            continue
        words = max(int(m.group(1)), 1)
        found = re.search(re.escape(before) + r"(\S+" + r"(?: \S+)" * (words - 1) + ")", body)
        if found:
            values[m.group(0)] = found.group(1).rstrip(".,;:")
    if not values:
        return ledger
    rx = re.compile("|".join(re.escape(t) for t in values))
    data = _walk(json.loads(ledger.model_dump_json()), lambda s: rx.sub(lambda x: values[x.group(0)], s))
    return Ledger.model_validate(data)
