"""Evaluating for /try and /decisions: evaluators of any stored version, and one answer.

The active version's evaluator is the registry's, which serves gRPC. Another version is
compiled here on first use and kept in a small cache of its own, so that trying old
versions never evicts what the registry serves. An evicted evaluator is closed once the
last page using it is done with it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from termdesk.evaluator import Evaluator
from termdesk.jsonview import package_json
from termdesk.model import Evaluation, TermPackage, Trade, TradeAdvice, Violation
from termdesk.registry import RulesetRegistry
from termdesk.reload import checked
from termdesk.ruleset.model import Ruleset
from termdesk.store.base import StoredVersion
from termdesk.trades import TradeAdvisor, TradeLimits
from termdesk.vocabulary import Vocabulary

__all__ = ["Answer", "Offer", "VersionEvaluators", "answer"]

# Compiled inactive versions kept: a few, each holds an engine handle.
DEFAULT_CAPACITY = 4


@dataclass
class _Entry:
    evaluator: Evaluator
    users: int = 0
    evicted: bool = False


class VersionEvaluators:
    """Evaluators by (name, version, digest): the registry's active one, or compiled here."""

    def __init__(
        self,
        registry: RulesetRegistry,
        vocabulary: Vocabulary,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.registry = registry
        self.vocabulary = vocabulary
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, stored: StoredVersion) -> Iterator[Evaluator]:
        """An evaluator of exactly `stored`, usable until the block ends.

        Raises `RulesetError` when the stored source no longer validates.
        """
        active = self._active(stored)
        if active is not None:
            yield active  # the registry closes a replaced evaluator only a minute later
            return
        key = (stored.name, stored.version, stored.digest)
        entry = self._take(key)
        if entry is None:
            entry = self._add(key, Evaluator(checked(stored, self.vocabulary)))
        try:
            yield entry.evaluator
        finally:
            self._release(entry)

    def ruleset(self, stored: StoredVersion) -> Ruleset:
        """The checked ruleset of exactly `stored`: the registry's when it is the active
        version, else validated now (raises `RulesetError` when it no longer validates)."""
        active = self._active(stored)
        return active.ruleset if active is not None else checked(stored, self.vocabulary)

    def cached(self) -> list[tuple[str, int]]:
        """(name, version) of the evaluators compiled here, least recently used first."""
        with self._lock:
            return [(name, version) for name, version, _ in self._entries]

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.evaluator.close()

    def _active(self, stored: StoredVersion) -> Evaluator | None:
        if self.registry.active_versions().get(stored.name) != stored.version:
            return None
        evaluator = self.registry.evaluator(stored.name)
        reference = evaluator.reference
        if (reference.version, reference.digest) != (stored.version, stored.digest):
            return None  # the registry switched in between
        return evaluator

    def _take(self, key: tuple[str, int, str]) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.users += 1
            return entry

    def _add(self, key: tuple[str, int, str], evaluator: Evaluator) -> _Entry:
        closing = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                closing.append(evaluator)  # another page compiled it meanwhile
            else:
                entry = self._entries[key] = _Entry(evaluator)
            entry.users += 1
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                _, oldest = self._entries.popitem(last=False)
                oldest.evicted = True
                if not oldest.users:
                    closing.append(oldest.evaluator)
        for unused in closing:
            unused.close()
        return entry

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            done = entry.evicted and not entry.users
        if done:
            entry.evaluator.close()


@dataclass(frozen=True, slots=True)
class Offer:
    """One violation and the trades offered to clear it, cheapest first."""

    violation: Violation
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """What Evaluate answers: the evaluation, and the trades with the counter-proposal."""

    evaluation: Evaluation
    advice: TradeAdvice

    def offers(self) -> list[Offer]:
        """Each violation with its trades, in the evaluation's order."""
        trades: dict[tuple[str, int], list[Trade]] = {}
        for trade in self.advice.trades:
            trades.setdefault((trade.rule_id, trade.term_index), []).append(trade)
        return [
            Offer(violation, tuple(trades.get((violation.rule_id, violation.term_index), ())))
            for violation in self.evaluation.violations
        ]

    def counter_proposal_json(self) -> str:
        """The counter-proposal package as the JSON a client sends; empty when none."""
        proposal = self.advice.counter_proposal
        return "" if proposal is None else json.dumps(package_json(proposal.package), indent=2)


def answer(
    evaluator: Evaluator, package: TermPackage, vocabulary: Vocabulary, limits: TradeLimits
) -> Answer:
    """The evaluation and trade advice for a checked package, as the gRPC Evaluate gives."""
    matches = evaluator.matches(package)
    evaluation = evaluator.evaluation_of(package, matches)
    advice = TradeAdvisor(evaluator, vocabulary, limits).advise(package, matches)
    return Answer(evaluation, advice)
