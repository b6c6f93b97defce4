"""Diagnostics: what a policy owner is told about a ruleset, with a stable code and a place."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Diagnostic", "Level"]


class Level(enum.Enum):
    """An error stops a ruleset from loading; a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a ruleset source, printed as `file:line:col: code: message`."""

    code: str
    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    rule_id: str = ""
    help: str = ""
    level: Level = Level.ERROR

    def __str__(self) -> str:
        where = f"{self.file or '<ruleset>'}:{self.line}:{self.column}"
        kind = "" if self.level is Level.ERROR else "warning: "
        text = f"{where}: {kind}{self.code}: {self.message}"
        if self.rule_id:
            text += f" (rule {self.rule_id})"
        return f"{text}\n  help: {self.help}" if self.help else text

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.code)
