"""``--redact-ledger``: the ledger keeps hashes in place of patient identifiers.

Every identifier of :meth:`Case.identifiers` (name, birth date, member id, address, group number, NPI,
denial reference) is replaced, wherever it occurs in the ledger (sentence texts, header, decision,
skeleton), by ``[sha256:<hex>/<words>]``: the sha256 of the identifier, salted with ``LETTERGEN_REDACT_SALT``
when that variable is set (a salt stops a dictionary attack on birth dates and short ids), and its
number of words. The letter itself is not touched; :func:`lettergen.edits.validate_edited` matches a
redacted sentence against the letter with each token standing for that many words.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from lettergen.case import Case
from lettergen.ledger import Ledger

SALT_ENV = "LETTERGEN_REDACT_SALT"
TOKEN = re.compile(r"\[sha256:[0-9a-f]{64}/(\d+)\]")


def token(value: str, salt: str | None = None) -> str:
    salt = os.environ.get(SALT_ENV, "") if salt is None else salt
    digest = hashlib.sha256((salt + value).encode("utf-8")).hexdigest()
    return f"[sha256:{digest}/{len(value.split())}]"


def _replacer(identifiers: list[str], salt: str | None) -> Any:
    # Longest first, so that a short identifier inside a longer one cannot split it.
    values = sorted({v for v in identifiers if v and v.strip()}, key=len, reverse=True)
    if not values:
        return lambda s: s
    tokens = {v: token(v, salt) for v in values}
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


def redact_ledger(ledger: Ledger, case: Case, salt: str | None = None) -> Ledger:
    """A copy of ``ledger`` with every identifier of ``case`` replaced by its hash token."""
    fn = _replacer(case.identifiers(), salt)
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
    from lettergen.edits import normalise
    from lettergen.render import assemble

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
