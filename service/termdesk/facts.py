"""Turns a checked package into the small facts the engine matches: one per term, then the deal.

Only term types and values some rule reads are projected (see `compiler.Feature`). Empty
text and empty lists count as absent, so `present(purpose)` means "filled in". The deal
fact carries the context and comes last: it is the trigger every engine rule starts with.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Set

from termdesk.model import Money, TermPackage, Value
from termdesk.ruleset.compiler import CONTEXT, DEAL_FACT_TYPE, CompiledRuleset, Feature

__all__ = ["Fact", "project"]

Fact = dict[str, object]


def project(
    package: TermPackage,
    compiled: CompiledRuleset,
    only: Set[str] | None = None,
    known: Mapping[int, Fact] | None = None,
) -> list[Fact]:
    """The facts of one package, in package order, with the deal fact last.

    `only` keeps the terms of those types (and the deal): enough for the rules reading them.
    `known` holds facts already projected, by `id()` of their (live, unchanged) term or
    context.
    """
    facts: list[Fact] = []
    for index, term in enumerate(package.terms):
        features = compiled.projection.get(term.type)
        if features is None or (only is not None and term.type not in only):
            continue
        fact = known.get(id(term)) if known is not None else None
        if fact is None:
            fact = {"id": f"t{index}", "t": term.type, "i": index}
            _store(fact, term.fields, features)
        elif fact["i"] != index:
            fact = {**fact, "id": f"t{index}", "i": index}
        facts.append(fact)
    deal = known.get(id(package.context)) if known is not None else None
    if deal is None:
        deal = {"id": "deal", "t": DEAL_FACT_TYPE, "i": -1}
        _store(deal, package.context, compiled.projection[CONTEXT])
    facts.append(deal)
    return facts


def _store(fact: Fact, fields: Mapping[str, Value], features: frozenset[Feature]) -> None:
    for feature in features:
        raw = fields.get(feature.name)
        if feature.kind == "field":
            if raw is None:
                continue
            if type(raw) in _AS_IS:  # the common case, stored as it is (see `_plain`)
                fact[feature.key] = raw
                continue
        value = _feature_value(raw, feature)
        if value is not None:
            fact[feature.key] = value


_AS_IS = frozenset({bool, int, float})


def _feature_value(value: Value, feature: Feature) -> object:
    if feature.kind == "count":
        return len(value) if isinstance(value, tuple) else 0
    if feature.kind in ("ascending", "non_decreasing"):
        return _ordered(value, feature.item_field, strict=feature.kind == "ascending")
    return _plain(value)


def _plain(value: Value) -> object:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, tuple):
        if not value:
            return None
        if all(isinstance(item, str | int | float) for item in value):
            return list(value)
        return True  # a list of objects: only its presence can be tested
    if isinstance(value, Money):
        return str(value)  # presence only: money is never compared as a float
    if isinstance(value, Mapping):
        return True
    return value


def _ordered(value: Value, item_field: str, *, strict: bool) -> bool:
    """Whether `item_field` ascends over the list; an absent or empty list is in order."""
    if not isinstance(value, tuple):
        return True
    numbers: list[float] = []
    for item in value:
        number = item.get(item_field) if isinstance(item, Mapping) else None
        if not isinstance(number, int | float) or isinstance(number, bool):
            return False
        numbers.append(number)
    pairs = itertools.pairwise(numbers)
    return all(a < b for a, b in pairs) if strict else all(a <= b for a, b in pairs)
