"""JSON views of results, with the field names and enum names of the termdesk.v1 contract."""

from __future__ import annotations

from termdesk.errors import PackageError, Problem
from termdesk.model import Evaluation, TermPackage, Violation, to_json_value

__all__ = ["evaluation_json", "package_json", "problems_json"]


def evaluation_json(evaluation: Evaluation, deal_id: str) -> dict[str, object]:
    """An evaluation as `EvaluateResponse` JSON (plus `deal_id`, to match batch lines)."""
    ruleset = evaluation.ruleset
    return {
        "deal_id": deal_id,
        "decision": f"DECISION_{evaluation.decision.value}",
        "violations": [_violation(violation) for violation in evaluation.violations],
        "required_approvers": list(evaluation.required_approvers),
        "ruleset": {"name": ruleset.name, "version": ruleset.version, "digest": ruleset.digest},
    }


def package_json(package: TermPackage) -> dict[str, object]:
    """A checked package as the JSON a client sends (money as `{amount, currency}`)."""
    return {
        "deal_id": package.deal_id,
        "context": to_json_value(package.context),
        "terms": [{"type": t.type, "fields": to_json_value(t.fields)} for t in package.terms],
    }


def _violation(violation: Violation) -> dict[str, object]:
    return {
        "rule_id": violation.rule_id,
        "severity": f"SEVERITY_{violation.severity.value}",
        "approver": violation.approver,
        "term_type": violation.term_type,
        "term_index": violation.term_index,
        "field": violation.field,
        "actual": to_json_value(violation.actual),
        "message": violation.message,
        "rationale": violation.rationale,
    }


def problems_json(error: PackageError) -> list[dict[str, str]]:
    """Each problem of a bad package as `{field, code, description, help}`."""
    return [_problem(problem) for problem in error.problems]


def _problem(problem: Problem) -> dict[str, str]:
    return {
        "field": problem.path,
        "code": problem.code,
        "description": problem.message,
        "help": problem.help,
    }
