"""Re-approval: how the violations of a revised package compare with the previous revision.

A violation is the same one in both revisions when its rule, its term type and the term's
position among the terms of that type agree (term indices move when terms are added or
removed; the third exclusivity term is still the third). Same rule, other value: CHANGED.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from termdesk.model import TermPackage, Violation

__all__ = ["Revision", "RevisionStatus", "compare"]


class RevisionStatus(enum.Enum):
    NEW = "NEW"
    UNCHANGED = "UNCHANGED"
    CHANGED = "CHANGED"


@dataclass(frozen=True, slots=True)
class Revision:
    """The status of each current violation (in order) and the previous ones now resolved."""

    statuses: tuple[RevisionStatus, ...]
    resolved: tuple[Violation, ...]


def compare(
    previous: TermPackage,
    previous_violations: Sequence[Violation],
    current: TermPackage,
    current_violations: Sequence[Violation],
) -> Revision:
    before = {_key(previous, violation): violation for violation in previous_violations}
    statuses = []
    matched = set()
    for violation in current_violations:
        key = _key(current, violation)
        earlier = before.get(key)
        if earlier is None:
            statuses.append(RevisionStatus.NEW)
            continue
        matched.add(key)
        same = earlier.actual == violation.actual and earlier.message == violation.message
        statuses.append(RevisionStatus.UNCHANGED if same else RevisionStatus.CHANGED)
    resolved = tuple(v for k, v in before.items() if k not in matched)
    return Revision(tuple(statuses), resolved)


def _key(package: TermPackage, violation: Violation) -> tuple[str, str, int]:
    index = violation.term_index
    if index < 0:
        return violation.rule_id, violation.term_type, -1
    term_type = package.terms[index].type
    position = sum(1 for term in package.terms[:index] if term.type == term_type)
    return violation.rule_id, violation.term_type, position
