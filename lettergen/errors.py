"""Every error lettergen raises on purpose, and who must act on it.

::

    LettergenError                  root; carries ``exit_code`` for the CLI
    ├── InputError                  the user's input is wrong: fix the file or the flag (exit 2)
    │   ├── CaseError               a case file (YAML, JSON or FHIR) fails validation
    │   ├── ProfileError            a practice profile (TOML) fails validation
    │   └── UsageError              a flag or argument combination makes no sense
    ├── DataError                   a shipped or user-supplied data file (citations/, criteria/,
    │                               templates/, prompts/) is corrupt: fix the knowledge base (exit 2)
    ├── EnvironmentProblem          the environment cannot do what was asked: a missing optional
    │                               extra, an unwritable directory, an unreachable model (exit 3)
    │   ├── MissingExtra            ``pip install 'lettergen[extra]'`` is the fix
    │   ├── OutputError             the output directory cannot be written
    │   └── ModelUnavailable        the polish model did not answer (after retries): check the
    │                               server, the key, or --timeout; the letter keeps its template wording
    ├── ValidationFailed            a letter breaks a validator rule (exit 1); carries the issues
    └── NothingToDraft              no requested code meets its criteria, so no payer letter is
        │                           drafted: the office must document more first (exit 4)
        └── NothingToAppeal         the same for an appeal or external review

Messages never carry a patient identifier: they name the file and the field, not the value.
The CLI prints ``str(error)`` as one line; no traceback reaches the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LettergenError(Exception):
    """Root of every error lettergen raises deliberately."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """The message as the lines the CLI prints (one, but for a case with several problems)."""
        return [self.message]

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take their own constructor arguments, so pickle rebuilds from the state instead:
        # an error raised in a polish worker process reaches the caller as itself.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[LettergenError], state: dict[str, Any]) -> LettergenError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


def one_line(text: str) -> str:
    """``text`` with every character that is not printable escaped (a newline, a control character, a bidi
    override), so that a file or key name in a message stays one line and shows what it holds."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class InputError(LettergenError):
    """The user must fix an input file or a flag."""

    exit_code = 2


class CaseError(InputError):
    """A case file is invalid. ``file`` and ``field`` say where, never what the patient value was.

    A case may have several problems, found at once: ``problems`` lists each (field, problem), the first
    being ``field`` and ``problem``, at most :data:`MAX_PROBLEMS` of them; ``more`` counts those left out.
    The message holds one line each (:meth:`lines`)."""

    MAX_PROBLEMS = 20

    def __init__(
        self, file: str, field: str, problem: str, *, others: Sequence[tuple[str, str]] = (), more: int = 0
    ) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        every = [(field, problem), *others]
        self.problems = every[: self.MAX_PROBLEMS]
        self.more = len(every) - len(self.problems) + more
        super().__init__("\n".join(self.lines()))

    @classmethod
    def many(cls, file: str, problems: Sequence[tuple[str, str]], more: int = 0) -> CaseError:
        """One error for every (field, problem) of a case (there must be at least one); ``more``: problems
        counted but not listed."""
        (field, problem), *others = problems
        return cls(file, field, problem, others=others, more=more)

    def lines(self) -> list[str]:
        out = []
        for field, problem in self.problems:
            where = f"{one_line(self.file)}: {one_line(field)}" if field else one_line(self.file)
            out.append(f"{where}: {problem}")
        if self.more:
            out.append(f"{one_line(self.file)}: and {self.more} more")
        return out


class ProfileError(InputError):
    """A practice profile (lettergen.case.profile) is invalid: ``file`` and ``key`` say where. A profile holds
    the practice's details, not a patient's, so the message may name the key and the file it points to."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        where = f"{one_line(file)}: {one_line(key)}" if key else one_line(file)
        super().__init__(f"{where}: {problem}")


class UsageError(InputError):
    """A command-line flag or argument is wrong."""


class DataError(LettergenError):
    """A data file of the knowledge base (citations, criteria, templates, prompts) is corrupt."""

    exit_code = 2

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        where = f"{one_line(file)}: {one_line(field)}" if field else one_line(file)
        super().__init__(f"{where}: {problem}")


class EnvironmentProblem(LettergenError):
    """The machine cannot do what was asked; the input is fine."""

    exit_code = 3


class MissingExtra(EnvironmentProblem):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, feature: str) -> None:
        self.extra = extra
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'lettergen[{extra}]'")


class OutputError(EnvironmentProblem):
    """The output directory or file cannot be written."""


class ValidationFailed(LettergenError):
    """A letter failed the validator; ``issues`` lists each broken rule."""

    exit_code = 1

    def __init__(self, message: str, issues: Sequence[Any] = ()) -> None:
        self.issues = list(issues)
        super().__init__(message)


class NothingToDraft(LettergenError):
    """No requested code meets its criteria: a payer letter (lmn, appeal, external review) would argue against
    its own request, so none is drafted. The staff note of ``lettergen check`` says what is missing."""

    exit_code = 4


class NothingToAppeal(NothingToDraft):
    """No denied code meets its criteria: lettergen drafts no appeal or external review request and says why."""


class ModelUnavailable(EnvironmentProblem):
    """The model could not answer (after retries, for transient errors)."""
