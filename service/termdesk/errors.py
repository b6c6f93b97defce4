"""The exceptions termdesk raises, in one tree.

TermdeskError
├── PackageError        a term package does not fit the vocabulary (carries every problem)
├── RulesetError        a ruleset source has errors (carries every diagnostic)
├── RulesetNotFoundError
└── EngineError         durable_rules failed while evaluating (a bug, not bad input)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from termdesk.ruleset.diagnostics import Diagnostic

__all__ = [
    "EngineError",
    "PackageError",
    "Problem",
    "RulesetError",
    "RulesetNotFoundError",
    "TermdeskError",
]


class TermdeskError(Exception):
    """Base of every error termdesk raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a package: where (`terms[2].fields.x`), what, and a fix."""

    path: str
    code: str
    message: str
    help: str = ""

    def __str__(self) -> str:
        text = f"{self.path or 'package'}: {self.message}"
        return f"{text} (help: {self.help})" if self.help else text


class PackageError(TermdeskError):
    """The package does not fit the vocabulary; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class RulesetError(TermdeskError):
    """A ruleset could not be loaded; `diagnostics` lists every error found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(diagnostic) for diagnostic in self.diagnostics))


class RulesetNotFoundError(TermdeskError):
    """No ruleset of that name (or version) is loaded."""


class EngineError(TermdeskError):
    """durable_rules returned an error code or an unreadable result."""
