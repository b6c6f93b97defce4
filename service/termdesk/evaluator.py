"""Evaluates checked packages: facts -> engine -> violations -> decision and approvers.

One `Evaluator` holds one compiled ruleset and its engine handle. It expects a package
already checked against the vocabulary (`termdesk.vocabulary.check_package`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from termdesk import facts
from termdesk.engine import RuleEngine
from termdesk.model import (
    APPROVER_ORDER,
    Decision,
    Evaluation,
    Money,
    RulesetRef,
    Severity,
    Term,
    TermPackage,
    Value,
    Violation,
)
from termdesk.ruleset.compiler import CompiledRuleset, compile_ruleset
from termdesk.ruleset.model import Rule, Ruleset

__all__ = ["Evaluator", "decide", "render_message"]

_SEVERITY_RANK = {Severity.BLOCK: 0, Severity.REVIEW: 1, Severity.WARN: 2}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Evaluator:
    """Evaluates packages against one ruleset version."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.compiled: CompiledRuleset = compile_ruleset(ruleset)
        self.reference = RulesetRef(ruleset.name, ruleset.version, ruleset.digest)
        self._engine = RuleEngine(ruleset.name, self.compiled.engine_rules)

    def matches(self, package: TermPackage) -> set[tuple[int, int]]:
        """(rule index, term index) of every violation, as the engine found them."""
        fired = self._engine.match(facts.project(package, self.compiled))
        return {(self.compiled.rule_of_clause[name], term) for name, term in fired}

    def evaluate(self, package: TermPackage) -> Evaluation:
        """The decision, the violations and the approvers for one checked package."""
        rules = self.ruleset.rules
        violations = [
            _violation(rules[rule_index], term_index, package, self.ruleset.parameters)
            for rule_index, term_index in sorted(
                self.matches(package),
                key=lambda match: (_SEVERITY_RANK[rules[match[0]].severity], *match),
            )
        ]
        decision, approvers = decide(violations)
        return Evaluation(decision, tuple(violations), approvers, self.reference)

    def close(self) -> None:
        self._engine.close()


def decide(violations: Iterable[Violation]) -> tuple[Decision, tuple[str, ...]]:
    """REJECT on any BLOCK, else NEEDS_APPROVAL on any REVIEW, else APPROVE.

    The approvers are those of the REVIEW violations, lowest authority first: who must
    sign once any BLOCK is cleared. WARN never changes the decision.
    """
    severities = set()
    approvers = set()
    for violation in violations:
        severities.add(violation.severity)
        if violation.severity is Severity.REVIEW:
            approvers.add(violation.approver)
    ordered = tuple(approver for approver in APPROVER_ORDER if approver in approvers)
    if Severity.BLOCK in severities:
        return Decision.REJECT, ordered
    if Severity.REVIEW in severities:
        return Decision.NEEDS_APPROVAL, ordered
    return Decision.APPROVE, ()


def _violation(
    rule: Rule,
    term_index: int,
    package: TermPackage,
    parameters: Mapping[str, object],
) -> Violation:
    term = package.terms[term_index] if term_index >= 0 else None
    actual = term.fields.get(rule.field) if term is not None and rule.field else None
    return Violation(
        rule_id=rule.id,
        severity=rule.severity,
        approver=rule.approver,
        term_type=rule.reported_term,
        term_index=term_index,
        field=rule.field,
        actual=actual,
        message=render_message(rule.message, term, package.context, parameters),
        rationale=rule.rationale,
    )


def render_message(
    template: str,
    term: Term | None,
    context: Mapping[str, Value],
    parameters: Mapping[str, object],
) -> str:
    """Fills `{field}`, `{context.field}` and `{$parameter}` with the package's values.

    `{field|text}` shows `text` when the field is not set (`not set` by default).
    """

    def fill(match: re.Match[str]) -> str:
        name, _, fallback = (part.strip() for part in match.group(1).partition("|"))
        if name.startswith("$"):
            value = parameters.get(name[1:])
        elif name.startswith("context."):
            value = context.get(name.removeprefix("context."))
        else:
            value = term.fields.get(name) if term is not None else None
        return _text(value, fallback or "not set")

    return _PLACEHOLDER.sub(fill, template)


def _text(value: object, missing: str = "not set") -> str:
    if value is None or value == "" or value == ():
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, tuple | list):
        return ", ".join(_text(item) for item in value)
    return str(value)
