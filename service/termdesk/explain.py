"""Explanations: for each rule and matched term, whether it fired and the values it read.

The engine decides; the explanation re-reads the same checked conditions with the
reference interpreter to say which part held (`when`) and which did not (`require`).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from termdesk import facts
from termdesk.evaluator import Evaluator
from termdesk.model import TermPackage, Value
from termdesk.ruleset.conditions import describe, fields_in, other_terms_in
from termdesk.ruleset.model import Rule
from termdesk.ruleset.reference import holds

__all__ = ["RuleExplanation", "explain"]


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """Why one rule fired or not on one term (`term_index` -1: the deal, or no such term)."""

    rule_id: str
    term_index: int
    violated: bool
    when_held: bool
    require_held: bool
    when: str
    require: str
    values: Mapping[str, Value]
    note: str = ""


def explain(
    evaluator: Evaluator, package: TermPackage, matches: Set[tuple[int, int]]
) -> list[RuleExplanation]:
    """One explanation per rule and term it applies to, in ruleset order."""
    projected = facts.project(package, evaluator.compiled)
    deal, terms = projected[-1], projected[:-1]
    by_index = {fact["i"]: fact for fact in terms}
    explanations: list[RuleExplanation] = []
    for rule_index, rule in enumerate(evaluator.ruleset.rules):
        if rule.term is None:
            subjects = [-1]
        else:
            subjects = [i for i, term in enumerate(package.terms) if term.type == rule.term]
        if not subjects:
            explanations.append(
                RuleExplanation(
                    rule.id,
                    -1,
                    violated=False,
                    when_held=rule.when is None,
                    require_held=True,
                    when=describe(rule.when),
                    require=describe(rule.require),
                    values={},
                    note=f"the package has no `{rule.term}` term",
                )
            )
        for index in subjects:
            fact = by_index.get(index) if index >= 0 else None
            when_held = rule.when is None or holds(rule.when, fact, deal, terms)
            require_held = rule.require is None or holds(rule.require, fact, deal, terms)
            explanations.append(
                RuleExplanation(
                    rule_id=rule.id,
                    term_index=index,
                    violated=(rule_index, index) in matches,
                    when_held=when_held,
                    require_held=require_held,
                    when=describe(rule.when),
                    require=describe(rule.require),
                    values=_values_read(rule, package, index),
                )
            )
    return explanations


def _values_read(rule: Rule, package: TermPackage, index: int) -> dict[str, Value]:
    """By name: `<field>` of the matched term, `context.<field>`, and `<type>[<i>].<field>`
    of the other terms the rule looks for."""
    term = package.terms[index] if index >= 0 else None
    values: dict[str, Value] = {}
    for field in [*fields_in(rule.when), *fields_in(rule.require)]:
        if field.scope == "context":
            values[f"context.{field.name}"] = package.context.get(field.name)
        elif term is not None:
            values[field.name] = term.fields.get(field.name)
    for term_type, where in [*other_terms_in(rule.when), *other_terms_in(rule.require)]:
        names = [field.name for field in fields_in(where) if field.scope != "context"]
        for other_index, other in enumerate(package.terms):
            if other.type == term_type and other_index != index:
                for name in names:
                    values[f"{term_type}[{other_index}].{name}"] = other.fields.get(name)
    return values
