"""The store's contract: what a backend keeps and the records it hands back. No I/O here.

A store keeps every version of every ruleset (the source exactly as published, its digest,
author, comment and time) and which version of each is active, an audit record of every
admin action, and the decision log. Versions are numbered 1, 2, ... per ruleset by the
store; publishing checks the caller's `expected_version` (optimistic concurrency) and
activates the new version in the same transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from termdesk.errors import RulesetNotFoundError, TermdeskError

__all__ = [
    "AuditRecord",
    "DecisionRecord",
    "RulesetSummary",
    "Store",
    "StoreError",
    "StoredVersion",
    "VersionConflictError",
    "utc_now",
]


class StoreError(TermdeskError):
    """The store cannot be opened, migrated or reached."""


class DecisionNotFoundError(TermdeskError):
    """No logged decision has the id (never logged, or pruned by the retention)."""


class VersionConflictError(TermdeskError):
    """A publish named an `expected_version` that is no longer the latest."""

    def __init__(self, name: str, expected: int, latest: int) -> None:
        self.name = name
        self.expected = expected
        self.latest = latest
        super().__init__(
            f"ruleset `{name}` is at version {latest}, not {expected} as expected: "
            "someone published in between; fetch the latest version, merge, publish again"
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One published version of a ruleset."""

    name: str
    version: int
    source: str
    digest: str
    author: str
    comment: str
    created_at: datetime
    active: bool = False


@dataclass(frozen=True, slots=True)
class RulesetSummary:
    """A ruleset in the store: its active and its latest version."""

    name: str
    active_version: int
    latest_version: int
    active_digest: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who did what to which ruleset, when, and how it ended (`OK` or a status code)."""

    actor: str
    role: str
    action: str
    target: str
    outcome: str
    detail: str = ""
    created_at: datetime = field(default_factory=utc_now)
    channel: str = "grpc"  # how the action came in: `grpc` (RulesetAdmin) or `console`


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One logged evaluation: enough to audit it and to replay its package."""

    decision_id: str
    deal_id: str
    ruleset: str
    ruleset_version: int
    ruleset_digest: str
    decision: str
    violations: Sequence[Mapping[str, object]]
    package: Mapping[str, object]
    created_at: datetime = field(default_factory=utc_now)


class Store(abc.ABC):
    """Ruleset versions, the audit log and the decision log; safe to use from any thread."""

    @abc.abstractmethod
    def migrate(self) -> int:
        """Applies the schema migrations not yet applied; returns the schema version."""

    @abc.abstractmethod
    def publish(
        self,
        name: str,
        source: str,
        digest: str,
        *,
        author: str,
        comment: str,
        expected_version: int | None = None,
    ) -> StoredVersion:
        """Stores `source` as the next version of `name` and activates it.

        `expected_version` is the latest version the caller saw (0: none yet); when it is
        given and is not the latest, raises `VersionConflictError` and stores nothing.
        """

    @abc.abstractmethod
    def activate(self, name: str, version: int) -> tuple[StoredVersion, int]:
        """Makes a stored version the active one; returns it and the version it replaced."""

    @abc.abstractmethod
    def get(self, name: str, version: int = 0) -> StoredVersion:
        """A stored version (0: the active one); raises `RulesetNotFoundError`."""

    @abc.abstractmethod
    def versions(self, name: str) -> list[StoredVersion]:
        """Every version of `name`, oldest first; raises `RulesetNotFoundError`."""

    @abc.abstractmethod
    def rulesets(self) -> list[RulesetSummary]:
        """Every ruleset in the store, by name."""

    @abc.abstractmethod
    def active_versions(self) -> dict[str, int]:
        """Ruleset name -> active version: the cheap question replicas poll."""

    @abc.abstractmethod
    def record_audit(self, record: AuditRecord) -> None: ...

    @abc.abstractmethod
    def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        """The newest audit records, newest first."""

    @abc.abstractmethod
    def record_decisions(self, records: Sequence[DecisionRecord]) -> None: ...

    @abc.abstractmethod
    def decisions(
        self, ruleset: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[DecisionRecord]:
        """The newest logged decisions of `ruleset` (from `since` on), newest first."""

    @abc.abstractmethod
    def search_decisions(
        self,
        *,
        ruleset: str = "",
        deal_id: str = "",
        decision: str = "",
        ruleset_version: int = 0,
        limit: int = 100,
    ) -> list[DecisionRecord]:
        """The newest logged decisions matching every filter given (empty or 0: any)."""

    @abc.abstractmethod
    def decision(self, decision_id: str) -> DecisionRecord:
        """One logged decision; raises `DecisionNotFoundError`."""

    @abc.abstractmethod
    def prune_decisions(self, older_than: datetime) -> int:
        """Deletes decisions logged before `older_than`; returns how many."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def is_empty(self) -> bool:
        return not self.active_versions()


def not_found(name: str, version: int, known: Sequence[int] | None) -> RulesetNotFoundError:
    if known is None:
        return RulesetNotFoundError(f"no ruleset `{name}` in the store")
    listed = ", ".join(str(v) for v in known)
    return RulesetNotFoundError(f"ruleset `{name}` has no version {version}; versions: {listed}")
