"""The rulesets a server evaluates against: evaluators by name and version, one active.

File mode loads `<dir>/<name>/ruleset.yaml`, each as the version its document names. A
new version is compiled before it becomes visible, so a broken ruleset is never active.
With a `loader` (store mode), a version asked for but not loaded is loaded on demand.

An evaluator that is replaced or evicted is closed only `RETIRE_AFTER_S` later: a call
that took it just before keeps a working engine handle until it is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from termdesk.catalog import DEFAULT_RULESET, ruleset_files
from termdesk.errors import RulesetNotFoundError
from termdesk.evaluator import Evaluator
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import load_ruleset
from termdesk.vocabulary import Vocabulary

__all__ = ["MAX_LOADED_VERSIONS", "RETIRE_AFTER_S", "RulesetRegistry"]

MAX_LOADED_VERSIONS = 8  # per ruleset; beyond it the oldest inactive one is retired
RETIRE_AFTER_S = 60.0


class RulesetRegistry:
    """Thread-safe map of ruleset name -> {version: Evaluator} and the active version."""

    def __init__(
        self,
        default_name: str = DEFAULT_RULESET,
        loader: Callable[[str, int], Ruleset] | None = None,
    ) -> None:
        self.default_name = default_name
        self._loader = loader
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
            retired = [previous] if previous is not None else []
            while len(versions) > MAX_LOADED_VERSIONS:
                oldest = next(v for v in versions if v != self._active[ruleset.name])
                retired.append(versions.pop(oldest))
        for old in retired:
            _retire(old)
        return evaluator

    def activate(self, name: str, version: int) -> bool:
        """Makes a loaded version the active one; False when it is not loaded."""
        with self._lock:
            if version not in self._versions.get(name, {}):
                return False
            self._active[name] = version
            return True

    def active_versions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._active)

    def evaluator(self, name: str = "", version: int = 0) -> Evaluator:
        """The evaluator of `name` (the default when empty) at `version` (0: active)."""
        name = name or self.default_name
        versions = self._versions.get(name)
        if self._loader is not None and version and version not in (versions or {}):
            self.add(self._loader(name, version), activate=False)
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


def _retire(evaluator: Evaluator) -> None:
    timer = threading.Timer(RETIRE_AFTER_S, evaluator.close)
    timer.daemon = True
    timer.start()
