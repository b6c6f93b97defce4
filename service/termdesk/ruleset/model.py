"""The checked ruleset: what the validator produces and the compiler, evaluator and tests use."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from termdesk.model import Decision, Severity, TermPackage, Value
from termdesk.ruleset.conditions import Condition, ConstValue

__all__ = [
    "BUCKETS",
    "Change",
    "Expectation",
    "Rule",
    "Ruleset",
    "TestCase",
    "TradeOption",
]

BUCKETS = ("must_have", "tradable", "giveaway")

ChangeOp = Literal["set_field", "remove_field", "add_term", "remove_term"]


@dataclass(frozen=True, slots=True)
class Change:
    """One change a trade makes to a package.

    `term_type` is the term changed (for `add_term`, the term added). A `set_field` takes
    its value from `value`, or from another field of the same term when `from_field` is set.
    """

    op: ChangeOp
    term_type: str
    field: str = ""
    value: Value = None
    from_field: str = ""
    param: str = ""
    fields: Mapping[str, Value] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TradeOption:
    """One alternative a rule offers; its changes apply together.

    A trade with `manual` text needs a person to supply something (a definition, a scope):
    it is shown, never applied automatically.
    """

    changes: tuple[Change, ...] = ()
    summary: str = ""
    manual: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy: on each term of type `term` (or once per deal when `term` is None),
    a violation is raised when `when` holds and `require` does not."""

    id: str
    term: str | None
    when: Condition | None
    require: Condition | None
    severity: Severity
    approver: str
    field: str
    reported_term: str
    message: str
    rationale: str
    trades: tuple[TradeOption, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a test case expects; `None` means "not checked"."""

    decision: Decision | None = None
    violations: frozenset[str] | None = None
    includes: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()
    approvers: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class TestCase:
    """A package written by the policy owner and what the ruleset must answer for it."""

    __test__ = False  # not a pytest class

    name: str
    package: TermPackage
    expect: Expectation
    line: int = 0


@dataclass(frozen=True, slots=True)
class Ruleset:
    """A ruleset that passed validation: safe to compile and activate."""

    name: str
    description: str
    version: int
    digest: str
    parameters: Mapping[str, ConstValue | tuple[ConstValue, ...]]
    buckets: Mapping[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    # The fields a term gets when an automatic repair adds it or a giveaway offers it.
    defaults: Mapping[str, Mapping[str, Value]] = dataclasses.field(default_factory=dict)
    tests: tuple[TestCase, ...] = ()
    source_file: str = ""
    # What each parameter means, where the source says (`{value: ..., description: ...}`).
    parameter_descriptions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def bucket_of(self, term_type: str) -> str:
        """The bucket a term type is in, `tradable` when the ruleset does not say."""
        for bucket, types in self.buckets.items():
            if term_type in types:
                return bucket
        return "tradable"
