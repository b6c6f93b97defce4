"""Impact analysis: replays logged packages against a draft and the active version, and
says which decisions the draft would change. No I/O: the caller reads the log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from termdesk.errors import PackageError
from termdesk.evaluator import Evaluator
from termdesk.model import Decision
from termdesk.store.base import DecisionRecord
from termdesk.vocabulary import Vocabulary, check_package

__all__ = ["DecisionChange", "ImpactReport", "analyze_impact"]


@dataclass(frozen=True, slots=True)
class DecisionChange:
    deal_id: str
    decision_id: str
    before: Decision
    after: Decision


@dataclass(frozen=True, slots=True)
class ImpactReport:
    """Packages replayed, those skipped (no longer valid), and every decision that moved."""

    replayed: int
    skipped: int
    changes: tuple[DecisionChange, ...]

    def transitions(self) -> list[tuple[Decision, Decision, int]]:
        """(before, after, count) for each way decisions moved, the most frequent first."""
        counts = Counter((change.before, change.after) for change in self.changes)
        return [
            (before, after, count)
            for (before, after), count in sorted(
                counts.items(), key=lambda item: (-item[1], item[0][0].value, item[0][1].value)
            )
        ]


def analyze_impact(
    records: Iterable[DecisionRecord],
    baseline: Evaluator,
    draft: Evaluator,
    vocabulary: Vocabulary,
) -> ImpactReport:
    """Evaluates each logged package with `baseline` and with `draft` and compares.

    Comparing with the baseline replayed now, rather than with the decision logged then,
    reports only what the draft changes, whatever version each decision was made with.
    """
    replayed = skipped = 0
    changes = []
    for record in records:
        try:
            package = check_package(dict(record.package), vocabulary)
        except PackageError:
            skipped += 1
            continue
        replayed += 1
        before = baseline.evaluate(package).decision
        after = draft.evaluate(package).decision
        if before is not after:
            changes.append(DecisionChange(record.deal_id, record.decision_id, before, after))
    return ImpactReport(replayed, skipped, tuple(changes))
