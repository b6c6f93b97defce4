"""Compiles a checked ruleset to durable_rules JSON: the only module that knows that dialect.

A rule raises a violation for each matched term (or once for the deal) where
`when and not require` holds. The compiler puts that condition in negation normal form,
then splits it into clauses, each one durable_rules rule:

    d        the deal fact (the trigger, asserted last) with the rule's context tests
    s        the matched term with its own-field tests (absent for deal-level rules)
    jN       a term that must exist, with its tests
    nN$not   a term that must not exist, with its tests

Every clause starts with the deal fact. The engine adapter asserts that fact last in the
batch, so a `$not` pattern is never evaluated before every term has arrived (the
workaround for durable_rules' late-negation bug; see ../shared/notes/durable-rules).

Facts carry only what some rule reads: for each term type the fields named in
conditions, and derived values (`<list>__n` item counts, `<list>__<field>__asc` /
`__nondesc` orderings) that durable_rules cannot compute itself.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from termdesk.ruleset.conditions import (
    Absent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    Contains,
    Count,
    Field,
    Lacks,
    Matches,
    NoneOf,
    Not,
    NoTerm,
    OneOf,
    Operand,
    Ordered,
    Present,
    TermExists,
    fact_key,
    to_nnf,
)
from termdesk.ruleset.model import Rule, Ruleset

__all__ = [
    "CANARY",
    "CONTEXT",
    "DEAL_FACT_TYPE",
    "MAX_CLAUSES_PER_RULE",
    "MAX_ENGINE_RULES",
    "MAX_PATTERNS_PER_FACT",
    "CompiledRuleset",
    "Feature",
    "clause_count",
    "compile_ruleset",
    "patterns_per_fact_type",
    "violation_condition",
]

DEAL_FACT_TYPE = "__deal__"
CANARY = "__canary__"
CONTEXT = "__context__"  # projection key for the deal context
MAX_CLAUSES_PER_RULE = 16
# durable_rules fails to create a ruleset with more than about 256 rules sharing their
# first pattern (error 108); every clause here starts with the deal fact.
MAX_ENGINE_RULES = 240
# One fact may match at most 64 distinct patterns (error 303 at the 65th, after which the
# session is unsafe to touch); identical patterns are shared.
MAX_PATTERNS_PER_FACT = 64

_OPERATORS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class Feature:
    """A value the fact projection stores under `key`: a field, or a derived value."""

    kind: str  # "field", "count", "ascending", "non_decreasing"
    name: str
    key: str
    item_field: str = ""


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    """A ruleset ready for the engine: durable_rules JSON plus how to read its results."""

    ruleset: Ruleset
    engine_rules: Mapping[str, object]
    rule_of_clause: Mapping[str, int]  # durable rule name -> index into ruleset.rules
    projection: Mapping[str, frozenset[Feature]]  # term type (or CONTEXT) -> stored values


@dataclass
class _Clause:
    deal: list[Condition] = field(default_factory=list)
    subject: list[Condition] = field(default_factory=list)
    joins: list[TermExists | NoTerm] = field(default_factory=list)

    def merged(self, other: _Clause) -> _Clause:
        return _Clause(
            [*self.deal, *other.deal], [*self.subject, *other.subject], [*self.joins, *other.joins]
        )


def violation_condition(rule: Rule) -> Condition | None:
    """`when and not require`, or None when the rule fires on every matched term."""
    parts: list[Condition] = []
    if rule.when is not None:
        parts.append(rule.when)
    if rule.require is not None:
        parts.append(Not(rule.require))
    if not parts:
        return None
    return to_nnf(parts[0] if len(parts) == 1 else AllOf(tuple(parts)))


def patterns_per_fact_type(rules: Sequence[Rule]) -> dict[str, int]:
    """How many distinct engine patterns test each fact type (the deal fact included)."""
    seen: dict[str, set[str]] = {}
    projection: dict[str, set[Feature]] = {CONTEXT: set()}
    for rule in rules:
        if rule.term is not None:
            projection.setdefault(rule.term, set())
        for clause in _clauses_of(rule):
            for pattern in _patterns(rule, clause, projection):
                ((_, test),) = pattern.items()
                fact_type = _fact_type(test)
                seen.setdefault(fact_type, set()).add(json.dumps(test, sort_keys=True))
    seen.setdefault(DEAL_FACT_TYPE, set()).add(json.dumps({"t": DEAL_FACT_TYPE}))  # canary
    return {fact_type: len(patterns) for fact_type, patterns in seen.items()}


def _fact_type(test: object) -> str:
    if isinstance(test, dict) and "$and" in test:
        test = test["$and"][0]
    assert isinstance(test, dict)
    return str(test["t"])


def clause_count(rule: Rule) -> int:
    """How many durable_rules rules the rule compiles to."""
    return len(_clauses_of(rule))


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """Builds the durable_rules JSON and the fact projection of a checked ruleset."""
    engine_rules: dict[str, object] = {}
    rule_of_clause: dict[str, int] = {}
    projection: dict[str, set[Feature]] = {CONTEXT: set()}
    for index, rule in enumerate(ruleset.rules):
        if rule.term is not None:
            projection.setdefault(rule.term, set())
        for number, clause in enumerate(_clauses_of(rule)):
            name = f"r{index}c{number}"
            engine_rules[name] = {"all": _patterns(rule, clause, projection)}
            rule_of_clause[name] = index
    engine_rules[CANARY] = {"all": [{"d": {"t": DEAL_FACT_TYPE}}]}
    if len(engine_rules) > MAX_ENGINE_RULES:
        raise ValueError(
            f"the ruleset compiles to {len(engine_rules)} engine rules; "
            f"durable_rules holds at most {MAX_ENGINE_RULES}"
        )
    return CompiledRuleset(
        ruleset=ruleset,
        engine_rules=engine_rules,
        rule_of_clause=rule_of_clause,
        projection={key: frozenset(value) for key, value in projection.items()},
    )


# --- clauses --------------------------------------------------------------------------------


def _clauses_of(rule: Rule) -> list[_Clause]:
    condition = violation_condition(rule)
    return [_Clause()] if condition is None else _clauses(condition)


def _slot(condition: Condition) -> str:
    """`deal` or `subject` when the condition reads one fact only, else `mixed`."""
    match condition:
        case TermExists() | NoTerm():
            return "mixed"
        case AllOf(items) | AnyOf(items):
            slots = {_slot(item) for item in items}
            return slots.pop() if len(slots) == 1 else "mixed"
    scopes = {field.scope for field in _operands(condition)}
    if len(scopes) != 1:
        return "mixed"
    return "deal" if scopes.pop() == "context" else "subject"


def _clauses(condition: Condition) -> list[_Clause]:
    slot = _slot(condition)
    if slot == "deal":
        return [_Clause(deal=[condition])]
    if slot == "subject":
        return [_Clause(subject=[condition])]
    match condition:
        case TermExists() | NoTerm():
            return [_Clause(joins=[condition])]
        case AllOf(items):
            product: list[_Clause] = [_Clause()]
            for item in items:
                product = [
                    left.merged(right) for left, right in itertools.product(product, _clauses(item))
                ]
            return product
        case AnyOf(items):
            # Alternatives that read the same single fact stay one `$or` in one pattern.
            grouped: dict[str, list[Condition]] = {}
            for item in items:
                grouped.setdefault(_slot(item), []).append(item)
            result: list[_Clause] = []
            for slot_name, members in grouped.items():
                if slot_name == "mixed":
                    for member in members:
                        result.extend(_clauses(member))
                else:
                    joined = members[0] if len(members) == 1 else AnyOf(tuple(members))
                    result.extend(_clauses(joined))
            return result
    raise AssertionError(condition)


# --- patterns ---------------------------------------------------------------------------------


def _patterns(
    rule: Rule, clause: _Clause, projection: dict[str, set[Feature]]
) -> list[dict[str, object]]:
    _collect(projection[CONTEXT], clause.deal)
    patterns: list[dict[str, object]] = [{"d": _pattern(DEAL_FACT_TYPE, clause.deal)}]
    if rule.term is not None:
        _collect(projection[rule.term], clause.subject)
        patterns.append({"s": _pattern(rule.term, clause.subject)})
    for number, join in enumerate(clause.joins):
        features = projection.setdefault(join.term_type, set())
        where = [join.where] if join.where is not None else []
        _collect(features, where)
        alias = f"j{number}" if isinstance(join, TermExists) else f"n{number}$not"
        patterns.append({alias: _pattern(join.term_type, where)})
    return patterns


def _pattern(fact_type: str, conditions: list[Condition]) -> object:
    tests = [{"t": fact_type}, *(_alpha(condition) for condition in conditions)]
    return tests[0] if len(tests) == 1 else {"$and": tests}


def _alpha(condition: Condition) -> object:
    """One fact's test in durable_rules' expression dialect (negation already pushed down)."""
    match condition:
        case AllOf(items):
            return {"$and": [_alpha(item) for item in items]}
        case AnyOf(items):
            return {"$or": [_alpha(item) for item in items]}
        case Present(field):
            return {"$ex": {fact_key(field): 1}}
        case Absent(field):
            return {"$nex": {fact_key(field): 1}}
        case OneOf(field, values):
            tests = [{fact_key(field): value.value} for value in values]
            return tests[0] if len(tests) == 1 else {"$or": tests}
        case NoneOf(field, values):
            return {"$and": [{"$neq": {fact_key(field): value.value}} for value in values]}
        case Contains(field, value):
            return {"$iany": {fact_key(field): {"$i": value.value}}}
        case Lacks(field, value):
            return {"$iall": {fact_key(field): {"$neq": {"$i": value.value}}}}
        case Matches(field, pattern):
            return {"$mt": {fact_key(field): pattern}}
        case Compare(left, operator, right):
            return _comparison(left, operator, right)
    raise AssertionError(f"not an alpha condition: {condition}")


def _comparison(left: Operand, operator: str, right: Operand) -> object:
    if isinstance(left, Const):
        left, operator, right = right, _MIRRORED[operator], left
    assert not isinstance(left, Const)
    key = fact_key(left)
    if isinstance(right, Const):
        value: object = right.value
        guard: list[object] = []
    else:
        value = {"$m": fact_key(right)}
        guard = [{"$ex": {fact_key(right): 1}}]
    test = {key: value} if operator == "==" else {_OPERATORS[operator]: {key: value}}
    return {"$and": [*guard, test]} if guard else test


# --- projection -------------------------------------------------------------------------------


def _operands(condition: Condition) -> list[Field | Count | Ordered]:
    match condition:
        case Compare(left, _, right):
            return [side for side in (left, right) if not isinstance(side, Const)]
        case (
            OneOf(field)
            | NoneOf(field)
            | Contains(field)
            | Lacks(field)
            | Matches(field)
            | Present(field)
            | Absent(field)
        ):
            return [field]
        case AllOf(items) | AnyOf(items):
            return [operand for item in items for operand in _operands(item)]
    return []


def _collect(features: set[Feature], conditions: Iterable[Condition]) -> None:
    for condition in conditions:
        for operand in _operands(condition):
            key = fact_key(operand)
            if isinstance(operand, Count):
                features.add(Feature("count", operand.name, key))
            elif isinstance(operand, Ordered):
                kind = "ascending" if operand.strict else "non_decreasing"
                features.add(Feature(kind, operand.name, key, operand.item_field))
            else:
                features.add(Feature("field", operand.name, key))
