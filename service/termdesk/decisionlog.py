"""The decision log: every evaluation, with its package, written to the store in batches.

Evaluations never wait on the database: `record` queues, and one writer thread inserts
what has queued every `interval` seconds (one transaction per batch). When the store is
slower than the traffic for long, the queue is bounded and records beyond it are dropped,
counted and reported (the `evaluation` log line on stdout still has them). Records older
than the retention are pruned at start and then hourly.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import timedelta

from termdesk.jsonview import package_json
from termdesk.logs import get_logger
from termdesk.model import Evaluation, TermPackage
from termdesk.store.base import DecisionRecord, Store, utc_now

__all__ = ["DecisionLog", "decision_record"]

log = get_logger("termdesk.decisionlog")

_MAX_QUEUED = 100_000
_MAX_BATCH = 1000
_PRUNE_EVERY_S = 3600.0


def decision_record(
    decision_id: str, package: TermPackage, evaluation: Evaluation
) -> DecisionRecord:
    ruleset = evaluation.ruleset
    return DecisionRecord(
        decision_id=decision_id,
        deal_id=package.deal_id,
        ruleset=ruleset.name,
        ruleset_version=ruleset.version,
        ruleset_digest=ruleset.digest,
        decision=evaluation.decision.value,
        violations=[
            {
                "rule_id": violation.rule_id,
                "severity": violation.severity.value,
                "term_index": violation.term_index,
                "field": violation.field,
            }
            for violation in evaluation.violations
        ],
        package=package_json(package),
    )


class DecisionLog:
    """Queues decision records and writes them to the store from one thread."""

    def __init__(self, store: Store, retention: timedelta, *, interval: float = 0.2) -> None:
        self.store = store
        self.retention = retention
        self.interval = interval
        self.dropped = 0
        self._queue: queue.Queue[DecisionRecord] = queue.Queue(_MAX_QUEUED)
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)

    def start(self) -> None:
        self._prune()
        self._thread.start()

    def record(self, decision_id: str, package: TermPackage, evaluation: Evaluation) -> None:
        try:
            with self._idle:
                self._queue.put_nowait(decision_record(decision_id, package, evaluation))
                self._pending += 1
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("decision log full", dropped=self.dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until every record queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        """Writes what is queued, then stops the writer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        pruned = time.monotonic()
        while True:
            stopping = self._stop.wait(self.interval)
            self._write_queued()
            if stopping:
                return
            if time.monotonic() - pruned > _PRUNE_EVERY_S:
                self._prune()
                pruned = time.monotonic()

    def _write_queued(self) -> None:
        while True:
            batch: list[DecisionRecord] = []
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return
            try:
                self.store.record_decisions(batch)
            except Exception:
                log.exception("decision log write failed", records=len(batch))
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _prune(self) -> None:
        try:
            pruned = self.store.prune_decisions(utc_now() - self.retention)
        except Exception:
            log.exception("decision log prune failed")
            return
        if pruned:
            log.info("decision log pruned", records=pruned, retention_days=self.retention.days)
