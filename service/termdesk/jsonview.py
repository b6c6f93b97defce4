"""JSON views of results, with the field names and enum names of the termdesk.v1 contract,
and the parsing of the JSON a user gives."""

from __future__ import annotations

import json

from termdesk.errors import PackageError, Problem
from termdesk.model import (
    Evaluation,
    PackageChange,
    TermPackage,
    Trade,
    TradeAdvice,
    Violation,
    to_json_value,
)

__all__ = ["advice_json", "evaluation_json", "package_json", "parse_json", "problems_json"]


def parse_json(text: str) -> object:
    """JSON from a user; a nesting too deep to parse is reported as bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:20], 0) from None


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


def advice_json(advice: TradeAdvice) -> dict[str, object]:
    """Trades, giveaways and the counter-proposal, as in `EvaluateResponse`."""
    view: dict[str, object] = {
        "trades": [_trade(trade) for trade in advice.trades],
        "giveaways": [_trade(trade) for trade in advice.giveaways],
    }
    proposal = advice.counter_proposal
    if proposal is not None:
        view["counter_proposal"] = package_json(proposal.package)
        view["counter_proposal_outcome"] = {
            "decision": f"DECISION_{proposal.evaluation.decision.value}",
            "violations": [_violation(v) for v in proposal.evaluation.violations],
            "required_approvers": list(proposal.evaluation.required_approvers),
            "applied_trades": advice.applied_trades(),
            "cost": proposal.cost,
        }
    if advice.truncated:
        view["trades_truncated"] = True
    return view


def _trade(trade: Trade) -> dict[str, object]:
    view: dict[str, object] = {
        "rule_id": trade.rule_id,
        "term_index": trade.term_index,
        "summary": trade.summary,
        "changes": [_change(change) for change in trade.changes],
        "verified": trade.verified,
        "cost": trade.cost,
        "source": f"TRADE_SOURCE_{trade.source.value}",
    }
    if trade.needs_input:
        view["needs_input"] = trade.needs_input
    return view


def _change(change: PackageChange) -> dict[str, object]:
    view: dict[str, object] = {"op": f"OP_{change.op.value}", "term_index": change.term_index}
    if change.field:
        view["field"] = change.field
    if change.op.value == "SET_FIELD":
        view["value"] = to_json_value(change.value)
    if change.term is not None:
        view["term"] = {"type": change.term.type, "fields": to_json_value(change.term.fields)}
    return view


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
