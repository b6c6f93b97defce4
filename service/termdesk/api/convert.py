"""Conversion between termdesk.v1 messages and the domain model. No logic beyond shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from google.protobuf import struct_pb2

from termdesk.explain import RuleExplanation
from termdesk.model import (
    ChangeOp,
    Evaluation,
    PackageChange,
    Term,
    TermPackage,
    Trade,
    TradeAdvice,
    Value,
    Violation,
    to_json_value,
)
from termdesk.revision import Revision
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.vocabulary import FieldSpec, Vocabulary

__all__ = [
    "add_advice",
    "add_revision",
    "evaluation_to_proto",
    "package_to_json",
    "vocabulary_to_proto",
]

_DECISIONS = {
    "APPROVE": pb.DECISION_APPROVE,
    "NEEDS_APPROVAL": pb.DECISION_NEEDS_APPROVAL,
    "REJECT": pb.DECISION_REJECT,
}
_OPS = {
    ChangeOp.SET_FIELD: pb.Change.OP_SET_FIELD,
    ChangeOp.REMOVE_FIELD: pb.Change.OP_REMOVE_FIELD,
    ChangeOp.ADD_TERM: pb.Change.OP_ADD_TERM,
    ChangeOp.REMOVE_TERM: pb.Change.OP_REMOVE_TERM,
}
_SOURCES = {
    "RULESET": pb.TRADE_SOURCE_RULESET,
    "REPAIR": pb.TRADE_SOURCE_REPAIR,
    "ALTERNATIVE": pb.TRADE_SOURCE_ALTERNATIVE,
    "GIVEAWAY": pb.TRADE_SOURCE_GIVEAWAY,
}
_REVISIONS = {
    "NEW": pb.REVISION_STATUS_NEW,
    "UNCHANGED": pb.REVISION_STATUS_UNCHANGED,
    "CHANGED": pb.REVISION_STATUS_CHANGED,
}
_SEVERITIES = {"WARN": pb.SEVERITY_WARN, "REVIEW": pb.SEVERITY_REVIEW, "BLOCK": pb.SEVERITY_BLOCK}


def package_to_json(package: pb.TermPackage) -> dict[str, object]:
    """The package as plain JSON data, ready for `vocabulary.check_package`.

    Struct numbers are doubles; the vocabulary check turns integral ones back into ints.
    """
    return {
        "deal_id": package.deal_id,
        "context": _struct(package.context),
        "terms": [{"type": term.type, "fields": _struct(term.fields)} for term in package.terms],
    }


def _struct(struct: struct_pb2.Struct) -> dict[str, object]:
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None


def to_proto_value(value: Value) -> struct_pb2.Value:
    """A model value as google.protobuf.Value (money as `{amount, currency}`)."""
    message = struct_pb2.Value()
    set_proto_value(message, value)
    return message


def set_proto_value(message: struct_pb2.Value, value: Value) -> None:
    """Fills a google.protobuf.Value in place (cheaper than building and copying one)."""
    data = to_json_value(value)
    if data is None:
        message.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        message.bool_value = data
    elif isinstance(data, int | float):
        message.number_value = data
    elif isinstance(data, str):
        message.string_value = data
    elif isinstance(data, list):
        message.list_value.extend(data)
    elif isinstance(data, dict):
        message.struct_value.update(data)


def evaluation_to_proto(
    evaluation: Evaluation,
    decision_id: str,
    explanations: Iterable[RuleExplanation] = (),
) -> pb.EvaluateResponse:
    ruleset = evaluation.ruleset
    response = pb.EvaluateResponse(
        decision=_DECISIONS[evaluation.decision.value],
        required_approvers=evaluation.required_approvers,
        ruleset=pb.RulesetRef(name=ruleset.name, version=ruleset.version, digest=ruleset.digest),
        decision_id=decision_id,
        explanations=[_explanation(explanation) for explanation in explanations],
    )
    for violation in evaluation.violations:
        _fill_violation(response.violations.add(), violation)
    return response


def add_advice(response: pb.EvaluateResponse, advice: TradeAdvice) -> None:
    """Fills trades, giveaways and the counter-proposal of a response."""
    response.trades_truncated = advice.truncated
    for trade in advice.trades:
        _fill_trade(response.trades.add(), trade)
    for trade in advice.giveaways:
        _fill_trade(response.giveaways.add(), trade)
    proposal = advice.counter_proposal
    if proposal is None:
        return
    _fill_package(response.counter_proposal, proposal.package)
    outcome = response.counter_proposal_outcome
    outcome.decision = _DECISIONS[proposal.evaluation.decision.value]
    outcome.required_approvers.extend(proposal.evaluation.required_approvers)
    outcome.cost = proposal.cost
    outcome.applied_trades.extend(advice.applied_trades())
    for violation in proposal.evaluation.violations:
        _fill_violation(outcome.violations.add(), violation)


def add_revision(response: pb.EvaluateResponse, revision: Revision) -> None:
    """Marks each violation new, unchanged or changed, and lists the resolved ones."""
    for message, status in zip(response.violations, revision.statuses, strict=True):
        message.revision = _REVISIONS[status.value]
    for violation in revision.resolved:
        _fill_violation(response.resolved_violations.add(), violation)


def _fill_trade(message: pb.Trade, trade: Trade) -> None:
    message.rule_id = trade.rule_id
    message.term_index = trade.term_index
    message.summary = trade.summary
    message.verified = trade.verified
    message.cost = trade.cost
    message.source = _SOURCES[trade.source.value]
    message.needs_input = trade.needs_input
    for change in trade.changes:
        _fill_change(message.changes.add(), change)


def _fill_change(message: pb.Change, change: PackageChange) -> None:
    message.op = _OPS[change.op]
    message.term_index = change.term_index
    message.field = change.field
    if change.op is ChangeOp.SET_FIELD:
        set_proto_value(message.value, change.value)
    if change.term is not None:
        _fill_term(message.term, change.term)


def _fill_package(message: pb.TermPackage, package: TermPackage) -> None:
    message.deal_id = package.deal_id
    message.context.update(cast(dict[str, Any], to_json_value(package.context)))
    for term in package.terms:
        _fill_term(message.terms.add(), term)


def _fill_term(message: pb.Term, term: Term) -> None:
    message.type = term.type
    message.fields.update(cast(dict[str, Any], to_json_value(term.fields)))


def _fill_violation(message: pb.Violation, violation: Violation) -> None:
    message.rule_id = violation.rule_id
    message.severity = _SEVERITIES[violation.severity.value]
    message.approver = violation.approver
    message.term_type = violation.term_type
    message.term_index = violation.term_index
    message.field = violation.field
    set_proto_value(message.actual, violation.actual)
    message.message = violation.message
    message.rationale = violation.rationale


def _explanation(explanation: RuleExplanation) -> pb.RuleExplanation:
    values = struct_pb2.Struct()
    values.update(cast(dict[str, Any], to_json_value(explanation.values)))
    return pb.RuleExplanation(
        rule_id=explanation.rule_id,
        term_index=explanation.term_index,
        violated=explanation.violated,
        when_held=explanation.when_held,
        require_held=explanation.require_held,
        when=explanation.when,
        require=explanation.require,
        values=values,
        note=explanation.note,
    )


def vocabulary_to_proto(vocabulary: Vocabulary) -> pb.GetVocabularyResponse:
    return pb.GetVocabularyResponse(
        context_fields=[_field(spec) for spec in vocabulary.context.values()],
        term_types=[
            pb.TermTypeInfo(
                name=term.name,
                meaning=term.meaning,
                fields=[_field(spec) for spec in term.fields.values()],
            )
            for term in vocabulary.terms.values()
        ],
    )


def _field(spec: FieldSpec) -> pb.FieldInfo:
    info = pb.FieldInfo(
        name=spec.name,
        type=spec.type,
        meaning=spec.meaning,
        unit=spec.unit,
        values=spec.values,
        fields=[_field(child) for child in _children(spec.fields)],
    )
    if spec.minimum is not None:
        info.minimum = spec.minimum
    if spec.maximum is not None:
        info.maximum = spec.maximum
    if spec.items is not None:
        info.items.CopyFrom(_field(spec.items))
    return info


def _children(fields: Mapping[str, FieldSpec]) -> list[FieldSpec]:
    return list(fields.values())
