"""The polish guard (validator rule 3, see lettergen.validation.rules): a polished sentence says what its draft said.

Both texts are compared in their locked form (see :mod:`lettergen.polish.lock`) by the meaning check that also
judges a person's edits (:func:`lettergen.validation.meaning.compare`, with a model's allowances): the same tokens in
the same order, no new or lost number, negation, comparator, modal, hedge, quantifier, condition word,
unit, antonym or clinical term, a length near the draft's, one plain sentence with no markup, promise,
new assertion of necessity or clause addressed to a reviewer.

:func:`check` returns the reasons a candidate fails, in plain words the model can act on; none means
it passes. :func:`judge` adds the validator's sentence rules on the unlocked text. Both are pure.
"""

from __future__ import annotations

from dataclasses import replace

from lettergen.case.model import Case
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Sentence
from lettergen.polish.lock import Vault
from lettergen.validation.meaning import compare
from lettergen.validation.rules import Issue, atoms, check_sentence, header_text


def check(original: str, candidate: object) -> list[str]:
    """Reasons why ``candidate`` is not a faithful rewording of ``original`` (both locked); [] if it is."""
    return compare(original, candidate, "model")


def judge(
    original: str,
    candidate: object,
    vault: Vault,
    sentences: list[Sentence],
    case: Case,
    kb: KnowledgeBase,
    header_atoms: set[str] | None = None,
) -> list[str]:
    """Everything a polished sentence must pass: the guard, then (unlocked) the validator's sentence rules.

    ``sentences`` are the letter's sentences that share this locked text; each keeps its own citations.
    Only validator issues the draft sentence did not already have count against the candidate.
    """
    reasons = check(original, candidate)
    if reasons or not isinstance(candidate, str):
        return reasons
    text = " ".join(vault.unlock(candidate).split())
    if header_atoms is None:
        header_atoms = set(atoms(header_text(case)))
    out: set[str] = set()
    for s in sentences:
        issues = _sentence_issues(replace(s, text=text), case, kb, header_atoms)
        if issues:
            draft = {(i.rule, i.message) for i in _sentence_issues(s, case, kb, header_atoms)}
            out.update(f"validator rule {i.rule}: {i.message}" for i in issues if (i.rule, i.message) not in draft)
    return sorted(out)


def _sentence_issues(s: Sentence, case: Case, kb: KnowledgeBase, header_atoms: set[str]) -> list[Issue]:
    # Rules 1 and 2 here; rule 6 (placeholders, promises) is in check(), and api.draft validates the whole letter.
    return [i for i in check_sentence(s, case, kb, header_atoms) if i.level == "error"]
