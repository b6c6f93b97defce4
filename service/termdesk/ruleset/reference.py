"""A plain-Python interpreter of checked conditions over projected facts.

It shares nothing with the compiler but the checked rules and the facts, and reads the
conditions as written (with `Not`, not in negation normal form). The differential tests
demand that it and the engine find the same violations; `explain` uses it to say why.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from termdesk.ruleset.conditions import (
    Absent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    Contains,
    Lacks,
    Matches,
    NoneOf,
    Not,
    NoTerm,
    OneOf,
    Operand,
    Present,
    TermExists,
    fact_key,
)
from termdesk.ruleset.model import Rule, Ruleset

__all__ = ["holds", "violations"]

Fact = Mapping[str, object]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def violations(ruleset: Ruleset, facts: Sequence[Fact]) -> set[tuple[int, int]]:
    """(rule index, term index) for every violation; term index -1 for deal-level rules."""
    deal = facts[-1]
    terms = facts[:-1]
    found: set[tuple[int, int]] = set()
    for index, rule in enumerate(ruleset.rules):
        if rule.term is None:
            if _violated(rule, None, deal, terms):
                found.add((index, -1))
            continue
        for fact in terms:
            if fact["t"] == rule.term and _violated(rule, fact, deal, terms):
                found.add((index, _index(fact)))
    return found


def _index(fact: Fact) -> int:
    index = fact["i"]
    assert isinstance(index, int)
    return index


def _violated(rule: Rule, subject: Fact | None, deal: Fact, terms: Sequence[Fact]) -> bool:
    when = rule.when is None or holds(rule.when, subject, deal, terms)
    return when and not (rule.require is not None and holds(rule.require, subject, deal, terms))


def holds(condition: Condition, fact: Fact | None, deal: Fact, terms: Sequence[Fact]) -> bool:
    """Whether `condition` holds for the term `fact` (None for deal-level rules)."""
    match condition:
        case AllOf(items):
            return all(holds(item, fact, deal, terms) for item in items)
        case AnyOf(items):
            return any(holds(item, fact, deal, terms) for item in items)
        case Not(item):
            return not holds(item, fact, deal, terms)
        case TermExists(term_type, where) | NoTerm(term_type, where):
            exists = any(
                other["t"] == term_type and (where is None or holds(where, other, deal, terms))
                for other in terms
            )
            return exists if isinstance(condition, TermExists) else not exists
        case Present(field):
            return _value(field, fact, deal) is not None
        case Absent(field):
            return _value(field, fact, deal) is None
        case Compare(left, op, right):
            left_value, right_value = _value(left, fact, deal), _value(right, fact, deal)
            if left_value is None or right_value is None:
                return False
            return _COMPARE[op](left_value, right_value)
        case OneOf(field, values) | NoneOf(field, values):
            current = _value(field, fact, deal)
            if current is None:
                return False
            inside = any(current == item.value for item in values)
            return inside if isinstance(condition, OneOf) else not inside
        case Contains(field, item) | Lacks(field, item):
            current = _value(field, fact, deal)
            if not isinstance(current, list):
                return False
            inside = item.value in current
            return inside if isinstance(condition, Contains) else not inside
        case Matches(field, pattern):
            current = _value(field, fact, deal)
            # DOTALL: in durable_rules' dialect `.` matches a line break too.
            return (
                isinstance(current, str) and re.fullmatch(pattern, current, re.DOTALL) is not None
            )
    raise AssertionError(condition)


def _value(operand: Operand, fact: Fact | None, deal: Fact) -> object:
    if isinstance(operand, Const):
        return operand.value
    source = deal if operand.scope == "context" else fact
    return None if source is None else source.get(fact_key(operand))
