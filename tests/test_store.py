"""The store contract, run against SQLite and a real PostgreSQL database alike."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from termdesk.errors import RulesetNotFoundError
from termdesk.store import (
    AuditRecord,
    DecisionNotFoundError,
    DecisionRecord,
    Store,
    StoreError,
    VersionConflictError,
    open_store,
)
from termdesk.store.base import utc_now
from termdesk.store.sql import SqlStore, migration_scripts

SOURCE_1 = "name: demo\nrules: []\n"
SOURCE_2 = "name: demo\n# tightened\nrules: []\r\n"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def publish(store: Store, source: str, expected: int | None = None) -> int:
    return store.publish(
        "demo",
        source,
        f"sha256:{len(source)}",
        author="ana",
        comment="c",
        expected_version=expected,
    ).version


def decision(decision_id: str, deal_id: str, age: timedelta = timedelta()) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        deal_id=deal_id,
        ruleset="demo",
        ruleset_version=1,
        ruleset_digest="sha256:x",
        decision="APPROVE",
        violations=[{"rule_id": "r.one", "severity": "WARN"}],
        package={"deal_id": deal_id, "terms": [{"type": "mfn", "fields": {"scope": "x"}}]},
        created_at=utc_now() - age,
    )


class TestMigrations:
    def test_a_new_store_is_migrated_and_empty(self, store: Store) -> None:
        """Opening creates the schema; a second migrate applies nothing new."""
        latest = migration_scripts(store.dialect if isinstance(store, SqlStore) else "")[-1][0]
        assert store.is_empty()
        assert latest == store.migrate()

    def test_reopening_keeps_the_data(self, store_url: str) -> None:
        first = open_store(store_url)
        publish(first, SOURCE_1)
        first.close()
        second = open_store(store_url)
        try:
            assert {"demo": 1} == second.active_versions()
        finally:
            second.close()

    def test_unknown_scheme_is_refused(self) -> None:
        with pytest.raises(StoreError, match="unsupported store `mysql`"):
            open_store("mysql://localhost/x")


class TestVersions:
    def test_publish_numbers_versions_and_activates_the_new_one(self, store: Store) -> None:
        assert 1 == publish(store, SOURCE_1, expected=0)
        assert 2 == publish(store, SOURCE_2, expected=1)
        assert {"demo": 2} == store.active_versions()
        versions = store.versions("demo")
        assert [1, 2] == [v.version for v in versions]
        assert [False, True] == [v.active for v in versions]
        assert ("ana", "c") == (versions[0].author, versions[0].comment)

    def test_source_is_kept_exactly_as_published(self, store: Store) -> None:
        publish(store, SOURCE_2)
        stored = store.get("demo")
        assert SOURCE_2 == stored.source
        assert stored.active
        assert f"sha256:{len(SOURCE_2)}" == stored.digest

    def test_publish_over_an_unseen_version_is_refused(self, store: Store) -> None:
        publish(store, SOURCE_1)
        publish(store, SOURCE_2)
        with pytest.raises(VersionConflictError, match="at version 2, not 1"):
            publish(store, SOURCE_1, expected=1)
        assert [1, 2] == [v.version for v in store.versions("demo")]

    def test_concurrent_publishes_with_the_same_expected_version_one_wins(
        self, store_url: str
    ) -> None:
        """Eight stores (eight connections) race on expected_version 1: exactly one wins."""
        first = open_store(store_url)
        publish(first, SOURCE_1)
        stores = [open_store(store_url) for _ in range(8)]
        barrier = threading.Barrier(len(stores))
        outcomes: list[str] = []

        def race(store: Store) -> None:
            barrier.wait()
            try:
                publish(store, SOURCE_2, expected=1)
                outcomes.append("won")
            except VersionConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=race, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert ["conflict"] * 7 + ["won"] == sorted(outcomes)
            assert [1, 2] == [v.version for v in first.versions("demo")]
        finally:
            for store in [first, *stores]:
                store.close()

    def test_activate_rolls_back_and_forward(self, store: Store) -> None:
        publish(store, SOURCE_1)
        publish(store, SOURCE_2)
        stored, previous = store.activate("demo", 1)
        assert (1, 2, True) == (stored.version, previous, stored.active)
        assert SOURCE_1 == store.get("demo").source
        store.activate("demo", 2)
        assert {"demo": 2} == store.active_versions()

    def test_unknown_names_and_versions_are_not_found(self, store: Store) -> None:
        publish(store, SOURCE_1)
        with pytest.raises(RulesetNotFoundError, match="no ruleset `nope`"):
            store.get("nope")
        with pytest.raises(RulesetNotFoundError, match="has no version 7; versions: 1"):
            store.get("demo", 7)
        with pytest.raises(RulesetNotFoundError, match="has no version 7"):
            store.activate("demo", 7)
        assert {"demo": 1} == store.active_versions()
        with pytest.raises(RulesetNotFoundError):
            store.versions("nope")

    def test_rulesets_lists_active_and_latest(self, store: Store) -> None:
        publish(store, SOURCE_1)
        publish(store, SOURCE_2)
        store.activate("demo", 1)
        (summary,) = store.rulesets()
        assert ("demo", 1, 2, "sha256:" + str(len(SOURCE_1))) == (
            summary.name,
            summary.active_version,
            summary.latest_version,
            summary.active_digest,
        )


class TestLogs:
    def test_audit_records_come_back_newest_first(self, store: Store) -> None:
        store.record_audit(AuditRecord("ana", "policy_owner", "PublishRuleset", "demo", "OK"))
        store.record_audit(
            AuditRecord("bob", "evaluator", "PublishRuleset", "demo", "PERMISSION_DENIED", "no")
        )
        newest, oldest = store.audit_records()
        assert ("bob", "PERMISSION_DENIED", "no") == (newest.actor, newest.outcome, newest.detail)
        assert "ana" == oldest.actor

    def test_decisions_round_trip_with_their_package(self, store: Store) -> None:
        record = decision("d1", "deal-1")
        store.record_decisions([record, decision("d2", "deal-2", timedelta(hours=2))])
        store.record_decisions([record])  # a retried write logs it once
        newest, oldest = store.decisions("demo")
        assert record.package == newest.package
        assert list(record.violations) == list(newest.violations)
        assert ("d1", "deal-2") == (newest.decision_id, oldest.deal_id)
        assert ["d1"] == [d.decision_id for d in store.decisions("demo", limit=1)]
        recent = store.decisions("demo", since=utc_now() - timedelta(hours=1))
        assert ["d1"] == [d.decision_id for d in recent]
        assert [] == store.decisions("other")

    def test_audit_records_keep_their_channel(self, store: Store) -> None:
        store.record_audit(AuditRecord("ana", "policy_owner", "PublishRuleset", "demo", "OK"))
        store.record_audit(
            AuditRecord("ana", "policy_owner", "Publish", "demo", "OK", channel="console")
        )
        assert ["console", "grpc"] == [r.channel for r in store.audit_records()]

    def test_decisions_are_searched_by_deal_decision_and_version(self, store: Store) -> None:
        blocked = dataclasses.replace(decision("d2", "deal-2"), decision="BLOCK")
        version_2 = dataclasses.replace(decision("d3", "deal-1"), ruleset_version=2)
        store.record_decisions([decision("d1", "deal-1", timedelta(hours=1)), blocked, version_2])

        def ids(**filters: Any) -> list[str]:
            return [d.decision_id for d in store.search_decisions(**filters)]

        assert ["d3", "d2", "d1"] == ids()
        assert ["d3", "d1"] == ids(deal_id="deal-1")
        assert ["d2"] == ids(decision="BLOCK")
        assert ["d1"] == ids(deal_id="deal-1", ruleset_version=1)
        assert [] == ids(ruleset="other")
        assert ["d3"] == ids(limit=1)
        assert blocked == store.decision("d2")
        with pytest.raises(DecisionNotFoundError, match="no logged decision `nope`"):
            store.decision("nope")

    def test_retention_prunes_old_decisions(self, store: Store) -> None:
        store.record_decisions([decision("new", "a"), decision("old", "b", timedelta(days=40))])
        assert 1 == store.prune_decisions(utc_now() - timedelta(days=30))
        assert ["new"] == [d.decision_id for d in store.decisions("demo")]
