"""The rulesets a server evaluates against: evaluators by name and version, one active.

File mode loads `<dir>/<name>/ruleset.yaml`, each as the version its document names. A
new version is compiled before it becomes visible, so a broken ruleset is never active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from termdesk.catalog import DEFAULT_RULESET, ruleset_files
from termdesk.errors import RulesetNotFoundError
from termdesk.evaluator import Evaluator
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import load_ruleset
from termdesk.vocabulary import Vocabulary

__all__ = ["RulesetRegistry"]


class RulesetRegistry:
    """Thread-safe map of ruleset name -> {version: Evaluator} and the active version."""

    def __init__(self, default_name: str = DEFAULT_RULESET) -> None:
        self.default_name = default_name
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, Evaluator]] = {}
        self._active: dict[str, int] = {}

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        default_name: str = DEFAULT_RULESET,
        vocabulary: Vocabulary | None = None,
    ) -> RulesetRegistry:
        """Loads every `*/ruleset.yaml` under `directory`; raises on the first broken one."""
        registry = cls(default_name)
        for path in ruleset_files([directory]):
            registry.add(load_ruleset(path, vocabulary))
        return registry

    def add(self, ruleset: Ruleset, *, activate: bool = True) -> Evaluator:
        """Compiles the ruleset and makes it available (and active, by default)."""
        evaluator = Evaluator(ruleset)
        with self._lock:
            versions = self._versions.setdefault(ruleset.name, {})
            previous = versions.get(ruleset.version)
            versions[ruleset.version] = evaluator
            if activate or ruleset.name not in self._active:
                self._active[ruleset.name] = ruleset.version
        if previous is not None:
            previous.close()
        return evaluator

    def evaluator(self, name: str = "", version: int = 0) -> Evaluator:
        """The evaluator of `name` (the default when empty) at `version` (0: active)."""
        name = name or self.default_name
        versions = self._versions.get(name)
        if versions is None:
            known = ", ".join(sorted(self._versions)) or "none"
            raise RulesetNotFoundError(f"no ruleset `{name}`; known rulesets: {known}")
        chosen = version or self._active[name]
        evaluator = versions.get(chosen)
        if evaluator is None:
            known = ", ".join(str(v) for v in sorted(versions))
            raise RulesetNotFoundError(
                f"ruleset `{name}` has no version {chosen}; versions: {known}"
            )
        return evaluator

    def names(self) -> list[str]:
        return sorted(self._versions)

    def active(self) -> Iterable[Evaluator]:
        """The active evaluator of every ruleset."""
        return [self._versions[name][version] for name, version in self._active.items()]

    def close(self) -> None:
        with self._lock:
            for versions in self._versions.values():
                for evaluator in versions.values():
                    evaluator.close()
            self._versions.clear()
            self._active.clear()
