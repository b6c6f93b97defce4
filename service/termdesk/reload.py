"""Keeps a server's registry in step with the store: hot reload without a restart.

On start, an empty store gets the shipped rulesets (or `--rulesets DIR`) as version 1 of
each, then every active version is loaded. A thread then polls the store's small
`rulesets` table every `interval` seconds: when another replica (or this one) has
published or activated, the new active version is read, validated, compiled, and only
then switched to. Calls already holding the old evaluator finish on it; the registry
retires it later. A stored version that no longer validates (a vocabulary changed under
it) is logged and skipped; the previous version stays active.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from termdesk.catalog import ruleset_files
from termdesk.errors import RulesetError
from termdesk.logs import get_logger
from termdesk.registry import RulesetRegistry
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import read_source, validate_source
from termdesk.store.base import Store, StoredVersion, VersionConflictError
from termdesk.vocabulary import Vocabulary

__all__ = ["IMPORT_AUTHOR", "StoreRulesets", "checked"]

log = get_logger("termdesk.reload")

IMPORT_AUTHOR = "termdesk-import"


def checked(stored: StoredVersion, vocabulary: Vocabulary) -> Ruleset:
    """The stored source validated, numbered with the store's version."""
    result = validate_source(stored.source, f"{stored.name}@{stored.version}", vocabulary)
    if result.ruleset is None:
        raise RulesetError(result.errors)
    return dataclasses.replace(result.ruleset, version=stored.version)


class StoreRulesets:
    """Loads the store's active versions into a registry, now and whenever they change."""

    def __init__(
        self, store: Store, vocabulary: Vocabulary, default_name: str, interval: float = 1.0
    ) -> None:
        self.store = store
        self.vocabulary = vocabulary
        self.interval = interval
        self.registry = RulesetRegistry(default_name, loader=self.load)
        # Told (ruleset, version) after each switch: the active-version metric listens.
        self.listeners: list[Callable[[str, int], None]] = []
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ruleset-reload", daemon=True)

    def import_directory(self, directory: Path) -> list[StoredVersion]:
        """Publishes every ruleset under `directory` as version 1, if the store is empty."""
        if not self.store.is_empty():
            return []
        imported = []
        for path in ruleset_files([directory]):
            source = read_source(path)
            result = validate_source(source, str(path), self.vocabulary)
            if result.ruleset is None:
                raise RulesetError(result.errors)
            try:
                stored = self.store.publish(
                    result.ruleset.name,
                    source,
                    result.ruleset.digest,
                    author=IMPORT_AUTHOR,
                    comment=f"imported from {path}",
                    expected_version=0,
                )
            except VersionConflictError:
                continue  # another replica starting at the same time imported it
            imported.append(stored)
            log.info(
                "ruleset imported", ruleset=stored.name, version=stored.version, file=str(path)
            )
        return imported

    def load(self, name: str, version: int) -> Ruleset:
        return checked(self.store.get(name, version), self.vocabulary)

    def refresh(self) -> dict[str, int]:
        """Switches every ruleset whose active version changed; returns what is active."""
        with self._refresh_lock:
            wanted = self.store.active_versions()
            current = self.registry.active_versions()
            for name, version in sorted(wanted.items()):
                if current.get(name) == version:
                    continue
                if self.registry.activate(name, version):
                    log.info("ruleset activated", ruleset=name, version=version)
                    self._tell(name, version)
                    continue
                try:
                    ruleset = self.load(name, version)
                except RulesetError as error:
                    log.error(  # noqa: TRY400 (the diagnostics say it all; no traceback)
                        "stored ruleset no longer validates; keeping the active one",
                        ruleset=name,
                        version=version,
                        errors=[str(d) for d in error.diagnostics[:5]],
                    )
                    continue
                self.registry.add(ruleset)
                log.info("ruleset activated", ruleset=name, version=version, digest=ruleset.digest)
                self._tell(name, version)
            return self.registry.active_versions()

    def _tell(self, name: str, version: int) -> None:
        for listener in self.listeners:
            listener(name, version)

    def start(self) -> None:
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:
                log.exception("ruleset reload failed; retrying")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
