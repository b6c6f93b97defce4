"""What changed between two ruleset sources: rules added, removed or changed, parameters.

Works on the YAML documents as written (a rule is compared key by key, whatever its line),
so it needs no vocabulary and reads versions stored long ago. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["ParameterChange", "RuleChange", "RulesetDiff", "diff_sources"]


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule_id: str
    changed_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """A parameter added (`before` empty), removed (`after` empty) or given a new value."""

    name: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class RulesetDiff:
    added_rules: tuple[str, ...]
    removed_rules: tuple[str, ...]
    changed_rules: tuple[RuleChange, ...]
    changed_parameters: tuple[ParameterChange, ...]


def diff_sources(before: str, after: str) -> RulesetDiff:
    """The differences from `before` to `after`, each list sorted by id or name."""
    old, new = _document(before), _document(after)
    old_rules, new_rules = _rules(old), _rules(new)
    changed = []
    for rule_id in sorted(old_rules.keys() & new_rules.keys()):
        a, b = old_rules[rule_id], new_rules[rule_id]
        keys = tuple(sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key)))
        if keys:
            changed.append(RuleChange(rule_id, keys))
    old_parameters, new_parameters = _parameters(old), _parameters(new)
    parameters = [
        ParameterChange(name, old_parameters.get(name, ""), new_parameters.get(name, ""))
        for name in sorted(old_parameters.keys() | new_parameters.keys())
        if old_parameters.get(name) != new_parameters.get(name)
    ]
    return RulesetDiff(
        added_rules=tuple(sorted(new_rules.keys() - old_rules.keys())),
        removed_rules=tuple(sorted(old_rules.keys() - new_rules.keys())),
        changed_rules=tuple(changed),
        changed_parameters=tuple(parameters),
    )


def _document(source: str) -> Mapping[str, Any]:
    data = yaml.safe_load(source)
    return data if isinstance(data, dict) else {}


def _rules(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    rules = document.get("rules") or []
    return {str(rule["id"]): rule for rule in rules if isinstance(rule, dict) and "id" in rule}


def _parameters(document: Mapping[str, Any]) -> dict[str, str]:
    raw = document.get("parameters") or {}
    values = {}
    for name, entry in raw.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        values[str(name)] = (
            yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")
        )
    return values
