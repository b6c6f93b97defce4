"""Runs a ruleset's own test cases, and says which rules they leave untested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from termdesk.evaluator import Evaluator
from termdesk.model import Evaluation
from termdesk.ruleset.model import Ruleset, TestCase

__all__ = ["CaseResult", "coverage_gaps", "run_tests"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test case: what went wrong (nothing when it passed) and the evaluation."""

    __test__ = False

    case: TestCase
    failures: tuple[str, ...]
    evaluation: Evaluation

    @property
    def passed(self) -> bool:
        return not self.failures


def run_tests(ruleset: Ruleset, evaluator: Evaluator | None = None) -> list[CaseResult]:
    """Evaluates every test case of the ruleset and compares with what it expects."""
    own = evaluator is None
    evaluator = evaluator or Evaluator(ruleset)
    try:
        return [_run(case, evaluator.evaluate(case.package)) for case in ruleset.tests]
    finally:
        if own:
            evaluator.close()


def _run(case: TestCase, evaluation: Evaluation) -> CaseResult:
    expect = case.expect
    fired = {violation.rule_id for violation in evaluation.violations}
    failures: list[str] = []
    if expect.decision is not None and expect.decision is not evaluation.decision:
        failures.append(
            f"decision: expected {expect.decision.value}, got {evaluation.decision.value}"
        )
    if expect.violations is not None and expect.violations != fired:
        failures.append(
            f"violations: expected {_ids(expect.violations)}, got {_ids(fired)} "
            f"(missing {_ids(expect.violations - fired)}, "
            f"unexpected {_ids(fired - expect.violations)})"
        )
    if missing := expect.includes - fired:
        failures.append(f"violations: expected to include {_ids(missing)}, got {_ids(fired)}")
    if unexpected := expect.excludes & fired:
        failures.append(f"violations: expected no {_ids(unexpected)}, got {_ids(fired)}")
    if expect.approvers is not None and tuple(expect.approvers) != evaluation.required_approvers:
        failures.append(
            f"approvers: expected {list(expect.approvers)}, "
            f"got {list(evaluation.required_approvers)}"
        )
    return CaseResult(case, tuple(failures), evaluation)


def _ids(rule_ids: set[str] | frozenset[str]) -> str:
    return "[" + ", ".join(sorted(rule_ids)) + "]"


def coverage_gaps(ruleset: Ruleset, results: Sequence[CaseResult]) -> dict[str, list[str]]:
    """Rules lacking a passing test case that asserts they fire, or one that they do not.

    A case counts as "does not fire" only if it asserts so (`excludes`, or an exact
    `violations` list) and, for a rule about a term type, the package holds such a term.
    """
    gaps: dict[str, list[str]] = {}
    for rule in ruleset.rules:
        fires = quiet = False
        for result in results:
            if not result.passed:
                continue
            expect, package = result.case.expect, result.case.package
            if rule.id in expect.includes or (
                expect.violations is not None and rule.id in expect.violations
            ):
                fires = True
            has_term = rule.term is None or any(t.type == rule.term for t in package.terms)
            asserted_quiet = rule.id in expect.excludes or (
                expect.violations is not None and rule.id not in expect.violations
            )
            quiet = quiet or (has_term and asserted_quiet)
        wanted = (("a case where it fires", fires), ("a case where it holds", quiet))
        missing = [name for name, ok in wanted if not ok]
        if missing:
            gaps[rule.id] = missing
    return gaps
