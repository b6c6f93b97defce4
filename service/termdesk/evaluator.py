"""Evaluates checked packages: facts -> engine -> violations -> decision and approvers.

One `Evaluator` holds one compiled ruleset and its engine handle. It expects a package
already checked against the vocabulary (`termdesk.vocabulary.check_package`).
"""

from __future__ import annotations

from collections.abc import Iterable

from termdesk import facts
from termdesk.engine import RuleEngine
from termdesk.messages import MessageTemplate
from termdesk.model import (
    APPROVER_ORDER,
    Decision,
    Evaluation,
    RulesetRef,
    Severity,
    TermPackage,
    Violation,
)
from termdesk.ruleset.compiler import CompiledRuleset, compile_ruleset
from termdesk.ruleset.model import Rule, Ruleset

__all__ = ["Evaluator", "decide"]

_SEVERITY_RANK = {Severity.BLOCK: 0, Severity.REVIEW: 1, Severity.WARN: 2}


class Evaluator:
    """Evaluates packages against one ruleset version."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.compiled: CompiledRuleset = compile_ruleset(ruleset)
        self.reference = RulesetRef(ruleset.name, ruleset.version, ruleset.digest)
        self._engine = RuleEngine(ruleset.name, self.compiled.engine_rules)
        self._messages = [
            MessageTemplate(rule.message, ruleset.parameters) for rule in ruleset.rules
        ]

    def matches(self, package: TermPackage) -> set[tuple[int, int]]:
        """(rule index, term index) of every violation, as the engine found them."""
        fired = self._engine.match(facts.project(package, self.compiled))
        return {(self.compiled.rule_of_clause[name], term) for name, term in fired}

    def evaluate(self, package: TermPackage) -> Evaluation:
        """The decision, the violations and the approvers for one checked package."""
        rules = self.ruleset.rules
        violations = [
            _violation(rules[rule_index], self._messages[rule_index], term_index, package)
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
    known = [approver for approver in APPROVER_ORDER if approver in approvers]
    ordered = (*known, *sorted(approvers - set(APPROVER_ORDER)))
    if Severity.BLOCK in severities:
        return Decision.REJECT, ordered
    if Severity.REVIEW in severities:
        return Decision.NEEDS_APPROVAL, ordered
    return Decision.APPROVE, ()


def _violation(
    rule: Rule, message: MessageTemplate, term_index: int, package: TermPackage
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
        message=message.render(term, package.context),
        rationale=rule.rationale,
    )
