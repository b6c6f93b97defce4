"""Finds ruleset files on disk: `<dir>/<name>/ruleset.yaml`, the layout of `rulesets/`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from termdesk.errors import RulesetNotFoundError
from termdesk.paths import shipped_rulesets_dir
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import load_ruleset
from termdesk.vocabulary import Vocabulary

__all__ = ["DEFAULT_RULESET", "RULESET_FILE", "find_ruleset", "ruleset_files"]

DEFAULT_RULESET = "partner-alliance"
RULESET_FILE = "ruleset.yaml"


def ruleset_files(paths: Iterable[Path]) -> list[Path]:
    """Ruleset files named directly, or found as `*/ruleset.yaml` under directories."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob(RULESET_FILE)))
        else:
            found.append(path)
    return found


def find_ruleset(
    name: str, directory: Path | None = None, vocabulary: Vocabulary | None = None
) -> Ruleset:
    """Loads and checks the ruleset `name` from `directory` (the shipped ones by default)."""
    root = directory or shipped_rulesets_dir()
    path = root / name / RULESET_FILE
    if not path.is_file():
        known = sorted(p.parent.name for p in root.glob(f"*/{RULESET_FILE}"))
        raise RulesetNotFoundError(
            f"no ruleset `{name}` in {root}; known rulesets: {', '.join(known) or 'none'}"
        )
    return load_ruleset(path, vocabulary)
