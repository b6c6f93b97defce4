"""Evaluates checked packages: facts -> engine -> violations -> decision and approvers.

One `Evaluator` holds one compiled ruleset and its engine handle. It expects a package
already checked against the vocabulary (`termdesk.vocabulary.check_package`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Set

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
from termdesk.ruleset.compiler import CANARY, CompiledRuleset, compile_ruleset
from termdesk.ruleset.conditions import other_terms_in
from termdesk.ruleset.model import Rule, Ruleset

__all__ = ["Evaluator", "Match", "decide", "moved"]

Match = tuple[int, int]  # (rule index, term index; -1 for the deal or a missing term)

# Engines for subsets of the rules, made for re-matching changed packages (`rematch`).
_MAX_PARTIAL_ENGINES = 64
# Sets of term types whose readers are remembered (`rules_reading`); beyond it, computed.
_MAX_READER_SETS = 1024
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
        # Per rule, the term types it reads; per term type, the rules that read it.
        self._reads = [_types_read(rule) for rule in ruleset.rules]
        readers: dict[str, set[int]] = {}
        for index, types in enumerate(self._reads):
            for term_type in types:
                readers.setdefault(term_type, set()).add(index)
        self._readers = {term_type: frozenset(rules) for term_type, rules in readers.items()}
        self._readers_of_set: dict[frozenset[str], frozenset[int]] = {}
        self._reads_of_set: dict[frozenset[int], frozenset[str]] = {}
        self._partial: dict[frozenset[int], RuleEngine] = {}
        self._partial_lock = threading.Lock()

    def matches(self, package: TermPackage) -> set[Match]:
        """(rule index, term index) of every violation, as the engine found them."""
        fired = self._engine.match(facts.project(package, self.compiled))
        return {(self.compiled.rule_of_clause[name], term) for name, term in fired}

    def rematch(
        self,
        base: Set[Match],
        variant: TermPackage,
        changed_types: Set[str],
        index_map: Mapping[int, int],
        known: Mapping[int, facts.Fact] | None = None,
    ) -> set[Match]:
        """The matches of `variant`, a changed copy of the package whose matches are `base`.

        Only the rules reading a changed term type run again, in the engine, on the terms
        they read; the others keep their matches (moved by `index_map`, old index to new,
        which leaves out removed terms): nothing they read has changed. `known` lends the
        facts of unchanged terms (see `facts.project`).
        """
        affected = self.rules_reading(changed_types)
        kept = moved((match for match in base if match[0] not in affected), index_map)
        if not affected:
            return kept
        needed = self.types_read(affected)
        engine = self._engine_for(affected)
        fired = engine.match(facts.project(variant, self.compiled, only=needed, known=known))
        of_clause = self.compiled.rule_of_clause
        return kept | {
            (of_clause[name], term) for name, term in fired if of_clause[name] in affected
        }

    def rules_reading(self, term_types: Iterable[str]) -> frozenset[int]:
        """The rules whose result can change when terms of these types change."""
        key = frozenset(term_types)
        rules = self._readers_of_set.get(key)
        if rules is None:
            rules = frozenset().union(*(self._readers.get(t, frozenset()) for t in key))
            if len(self._readers_of_set) < _MAX_READER_SETS:
                self._readers_of_set[key] = rules
        return rules

    def types_read(self, rules: Iterable[int]) -> frozenset[str]:
        """The term types whose facts these rules read."""
        key = frozenset(rules)
        types = self._reads_of_set.get(key)
        if types is None:
            types = frozenset().union(*(self._reads[rule] for rule in key))
            if len(self._reads_of_set) < _MAX_READER_SETS:
                self._reads_of_set[key] = types
        return types

    def _engine_for(self, rules: frozenset[int]) -> RuleEngine:
        """An engine holding only `rules` (made on first use), or the whole ruleset's.

        A session costs in proportion to the rules of its handle (see the durable_rules
        notes), so re-matching a few rules in a handle of their own is several times cheaper.
        """
        with self._partial_lock:
            engine = self._partial.get(rules)
            if engine is None and len(self._partial) < _MAX_PARTIAL_ENGINES:
                clauses = {
                    name: clause
                    for name, clause in self.compiled.engine_rules.items()
                    if name == CANARY or self.compiled.rule_of_clause.get(name) in rules
                }
                engine = RuleEngine(self.ruleset.name, clauses)
                self._partial[rules] = engine
        return engine or self._engine

    def evaluate(self, package: TermPackage) -> Evaluation:
        """The decision, the violations and the approvers for one checked package."""
        return self.evaluation_of(package, self.matches(package))

    def evaluation_of(self, package: TermPackage, matches: Set[Match]) -> Evaluation:
        """The evaluation of a package whose matches are known."""
        rules = self.ruleset.rules
        violations = [
            _violation(rules[rule_index], self._messages[rule_index], term_index, package)
            for rule_index, term_index in sorted(
                matches,
                key=lambda match: (_SEVERITY_RANK[rules[match[0]].severity], *match),
            )
        ]
        decision, approvers = decide(violations)
        return Evaluation(decision, tuple(violations), approvers, self.reference)

    def close(self) -> None:
        with self._partial_lock:
            for engine in self._partial.values():
                engine.close()
            self._partial.clear()
        self._engine.close()


def moved(matches: Iterable[Match], index_map: Mapping[int, int]) -> set[Match]:
    """The matches carried into a changed copy of the package: term indices through
    `index_map` (old to new), matches on removed terms left out, deal-level ones kept."""
    return {
        (rule, index_map[term] if term >= 0 else -1)
        for rule, term in matches
        if term < 0 or term in index_map
    }


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


def _types_read(rule: Rule) -> frozenset[str]:
    """The term types whose facts decide whether `rule` fires."""
    others = [*other_terms_in(rule.when), *other_terms_in(rule.require)]
    subject = {rule.term} if rule.term else set()
    return frozenset(subject | {term_type for term_type, _ in others})


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
