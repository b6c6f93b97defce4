"""Frozen domain types: term packages, violations, decisions. No I/O.

A `TermPackage` here has already been checked against the vocabulary (see
`termdesk.vocabulary`): every term type and field is known and every value has its
declared type. Money values are `Money` (a `Decimal` amount and a currency), never floats.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeAlias

__all__ = [
    "APPROVER_ORDER",
    "ChangeOp",
    "CounterProposal",
    "Decision",
    "Evaluation",
    "Money",
    "PackageChange",
    "RulesetRef",
    "Severity",
    "Term",
    "TermPackage",
    "Trade",
    "TradeAdvice",
    "TradeSource",
    "Value",
    "Violation",
    "to_json_value",
]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money: an exact decimal amount and an ISO 4217 currency code."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


# A checked field value: JSON-like, with Money for money fields and tuples for lists.
Value: TypeAlias = (
    bool | int | float | str | Money | tuple["Value", ...] | Mapping[str, "Value"] | None
)


@dataclass(frozen=True, slots=True)
class Term:
    """One typed clause of a deal, such as an exclusivity grant or payment terms."""

    type: str
    fields: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TermPackage:
    """One proposed deal: its id, its context and its terms (a type may appear twice)."""

    deal_id: str
    context: Mapping[str, Value] = field(default_factory=dict)
    terms: tuple[Term, ...] = ()


class Severity(enum.Enum):
    """How much a violation weighs; values are the names used in rulesets and contracts."""

    WARN = "WARN"
    REVIEW = "REVIEW"
    BLOCK = "BLOCK"


class Decision(enum.Enum):
    """The outcome of one evaluation."""

    APPROVE = "APPROVE"
    NEEDS_APPROVAL = "NEEDS_APPROVAL"
    REJECT = "REJECT"


# Approvers from lowest to highest authority; required approvers are listed in this order.
APPROVER_ORDER: tuple[str, ...] = ("deal_desk", "finance", "legal", "executive")


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule the package breaks, with the reason behind it.

    `term_index` is the position of the term in the package as sent, or -1 when the
    term is missing from the package or the rule concerns the deal as a whole.
    """

    rule_id: str
    severity: Severity
    approver: str
    term_type: str
    term_index: int
    field: str
    actual: Value
    message: str
    rationale: str


@dataclass(frozen=True, slots=True)
class RulesetRef:
    """Which ruleset decided: its name, version and the digest of its source."""

    name: str
    version: int
    digest: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The answer for one package: decision, violations and who must approve."""

    decision: Decision
    violations: tuple[Violation, ...]
    required_approvers: tuple[str, ...]
    ruleset: RulesetRef


class ChangeOp(enum.Enum):
    """What a change does to a package."""

    SET_FIELD = "SET_FIELD"
    REMOVE_FIELD = "REMOVE_FIELD"
    ADD_TERM = "ADD_TERM"
    REMOVE_TERM = "REMOVE_TERM"


@dataclass(frozen=True, slots=True)
class PackageChange:
    """One change to a package; `term_index` refers to the package as sent (-1 for an added
    term). A trade's changes apply together: field changes, then removals, then additions."""

    op: ChangeOp
    term_index: int = -1
    field: str = ""
    value: Value = None
    term: Term | None = None


class TradeSource(enum.Enum):
    """Where a trade comes from."""

    RULESET = "RULESET"  # a trade the rule's author wrote
    REPAIR = "REPAIR"  # derived from the violated condition
    ALTERNATIVE = "ALTERNATIVE"  # one branch of an any-of requirement
    GIVEAWAY = "GIVEAWAY"  # a cheap term from the ruleset's giveaway bucket


@dataclass(frozen=True, slots=True)
class Trade:
    """Changes that clear one violation (`rule_id` on `term_index`).

    `verified` means the changed package was evaluated again: the rule no longer fires and
    no new BLOCK or REVIEW appeared. A trade that needs a person (`needs_input`) is never
    verified. `cost` is the concession cost from the ruleset's buckets.
    """

    rule_id: str
    term_index: int
    summary: str
    changes: tuple[PackageChange, ...]
    verified: bool
    cost: float
    source: TradeSource
    needs_input: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class CounterProposal:
    """The package with a set of verified trades applied, and how it evaluates."""

    package: TermPackage
    evaluation: Evaluation
    trades: tuple[Trade, ...]
    cost: float


@dataclass(frozen=True, slots=True)
class TradeAdvice:
    """Trades per violation (cheapest first), the counter-proposal and the giveaways.

    `counter_proposal` is None when no verified trade changes anything. `truncated` says
    that a per-request limit stopped the search before every candidate was tried.
    """

    trades: tuple[Trade, ...]
    counter_proposal: CounterProposal | None
    giveaways: tuple[Trade, ...]
    engine_calls: int
    truncated: bool = False

    def applied_trades(self) -> list[int]:
        """Indices into `trades` of the trades the counter-proposal took."""
        if self.counter_proposal is None:
            return []
        taken = {id(trade) for trade in self.counter_proposal.trades}
        return [index for index, trade in enumerate(self.trades) if id(trade) in taken]


_SCALARS = (str, bool, int, float, type(None))


def to_json_value(value: Value) -> object:
    """Converts a checked value to plain JSON data (money as its documented object)."""
    if isinstance(value, _SCALARS):  # first: the ABC check of Mapping is slow
        return value
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_json_value(item) for key, item in value.items()}
    return value
