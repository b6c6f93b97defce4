"""Conversion between the models and the generated termdesk.v1 messages: shape only.

Also reads the rich error details of a failed call (google.rpc.BadRequest and
google.rpc.ErrorInfo) into field violations and a reason. A response the contract does
not allow (an unspecified decision, a batch result with no outcome) raises ValueError;
the client reports it as a ServerError.

Struct numbers come back as floats, exactly as protobuf gives them (see `models`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from pydantic import JsonValue

from termdesk.v1 import termdesk_pb2 as pb
from termdesk_client.models import (
    BatchError,
    BatchItem,
    Change,
    ChangeOp,
    CounterProposalOutcome,
    Decision,
    Evaluation,
    FieldInfo,
    FieldViolation,
    RevisionStatus,
    RuleExplanation,
    RulesetRef,
    Severity,
    Term,
    TermPackage,
    TermTypeInfo,
    Trade,
    TradeSource,
    Violation,
    Vocabulary,
)

__all__ = [
    "batch_item_from_proto",
    "evaluation_from_proto",
    "package_from_proto",
    "package_to_proto",
    "status_details",
    "struct_to_json",
    "value_to_json",
    "vocabulary_from_proto",
]

_Name = TypeVar("_Name", bound=str)

_DECISIONS: dict[int, Decision] = {
    pb.DECISION_APPROVE: "APPROVE",
    pb.DECISION_NEEDS_APPROVAL: "NEEDS_APPROVAL",
    pb.DECISION_REJECT: "REJECT",
}
_SEVERITIES: dict[int, Severity] = {
    pb.SEVERITY_WARN: "WARN",
    pb.SEVERITY_REVIEW: "REVIEW",
    pb.SEVERITY_BLOCK: "BLOCK",
}
_OPS: dict[int, ChangeOp] = {
    pb.Change.OP_SET_FIELD: "SET_FIELD",
    pb.Change.OP_REMOVE_FIELD: "REMOVE_FIELD",
    pb.Change.OP_ADD_TERM: "ADD_TERM",
    pb.Change.OP_REMOVE_TERM: "REMOVE_TERM",
}
_SOURCES: dict[int, TradeSource] = {
    pb.TRADE_SOURCE_RULESET: "RULESET",
    pb.TRADE_SOURCE_REPAIR: "REPAIR",
    pb.TRADE_SOURCE_ALTERNATIVE: "ALTERNATIVE",
    pb.TRADE_SOURCE_GIVEAWAY: "GIVEAWAY",
}
_REVISIONS: dict[int, RevisionStatus] = {
    pb.REVISION_STATUS_NEW: "NEW",
    pb.REVISION_STATUS_UNCHANGED: "UNCHANGED",
    pb.REVISION_STATUS_CHANGED: "CHANGED",
}
# BadRequest.FieldViolation has no `help`: the server appends it to the description.
_HELP = re.compile(r"(?P<description>.*) \(help: (?P<help>.*)\)", re.DOTALL)


# -- JSON values


def value_to_json(value: struct_pb2.Value) -> JsonValue:
    """A google.protobuf.Value as plain JSON data (numbers are floats; unset is None)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_json(value.struct_value)
    if kind == "list_value":
        return [value_to_json(item) for item in value.list_value.values]
    return None


def struct_to_json(struct: struct_pb2.Struct) -> dict[str, JsonValue]:
    """A google.protobuf.Struct as a plain dict."""
    return {key: value_to_json(value) for key, value in struct.fields.items()}


def _struct(data: Mapping[str, JsonValue]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


# -- packages


def _term_to_proto(term: Term) -> pb.Term:
    return pb.Term(type=term.type, fields=_struct(term.fields))


def _term_from_proto(term: pb.Term) -> Term:
    return Term(type=term.type, fields=struct_to_json(term.fields))


def package_to_proto(package: TermPackage) -> pb.TermPackage:
    """The package as the request message carries it."""
    return pb.TermPackage(
        deal_id=package.deal_id,
        context=_struct(package.context),
        terms=[_term_to_proto(term) for term in package.terms],
    )


def package_from_proto(package: pb.TermPackage) -> TermPackage:
    """A package message (a counter-proposal) as a model."""
    return TermPackage(
        deal_id=package.deal_id,
        context=struct_to_json(package.context),
        terms=tuple(_term_from_proto(term) for term in package.terms),
    )


# -- evaluations


def _enum(table: Mapping[int, _Name], number: int, what: str) -> _Name:
    try:
        return table[number]
    except KeyError:
        raise ValueError(
            f"the server sent {what} {number}, which this client does not know"
        ) from None


def _violation(message: pb.Violation) -> Violation:
    return Violation(
        rule_id=message.rule_id,
        severity=_enum(_SEVERITIES, message.severity, "severity"),
        approver=message.approver,
        term_type=message.term_type,
        term_index=message.term_index,
        field=message.field,
        actual=value_to_json(message.actual),
        message=message.message,
        rationale=message.rationale,
        revision=_REVISIONS.get(message.revision, ""),
    )


def _change(message: pb.Change) -> Change:
    return Change(
        op=_enum(_OPS, message.op, "change op"),
        term_index=message.term_index,
        field=message.field,
        value=value_to_json(message.value),
        term=_term_from_proto(message.term) if message.HasField("term") else None,
    )


def _trade(message: pb.Trade) -> Trade:
    return Trade(
        rule_id=message.rule_id,
        summary=message.summary,
        changes=tuple(_change(change) for change in message.changes),
        verified=message.verified,
        cost=message.cost,
        term_index=message.term_index,
        source=_SOURCES.get(message.source, "RULESET"),
        needs_input=message.needs_input,
    )


def _outcome(message: pb.CounterProposalOutcome) -> CounterProposalOutcome:
    return CounterProposalOutcome(
        decision=_enum(_DECISIONS, message.decision, "decision"),
        violations=tuple(_violation(violation) for violation in message.violations),
        required_approvers=tuple(message.required_approvers),
        applied_trades=tuple(message.applied_trades),
        cost=message.cost,
    )


def _explanation(message: pb.RuleExplanation) -> RuleExplanation:
    return RuleExplanation(
        rule_id=message.rule_id,
        term_index=message.term_index,
        violated=message.violated,
        when_held=message.when_held,
        require_held=message.require_held,
        when=message.when,
        require=message.require,
        values=struct_to_json(message.values),
        note=message.note,
    )


def evaluation_from_proto(message: pb.EvaluateResponse) -> Evaluation:
    """An EvaluateResponse as an Evaluation; ValueError on a decision this client lacks."""
    counter = message.counter_proposal if message.HasField("counter_proposal") else None
    return Evaluation(
        decision=_enum(_DECISIONS, message.decision, "decision"),
        violations=tuple(_violation(violation) for violation in message.violations),
        trades=tuple(_trade(trade) for trade in message.trades),
        counter_proposal=package_from_proto(counter) if counter is not None else None,
        required_approvers=tuple(message.required_approvers),
        ruleset=RulesetRef(
            name=message.ruleset.name,
            version=message.ruleset.version,
            digest=message.ruleset.digest,
        ),
        decision_id=message.decision_id,
        explanations=tuple(_explanation(item) for item in message.explanations),
        giveaways=tuple(_trade(trade) for trade in message.giveaways),
        counter_proposal_outcome=_outcome(message.counter_proposal_outcome)
        if message.HasField("counter_proposal_outcome")
        else None,
        resolved_violations=tuple(_violation(v) for v in message.resolved_violations),
        trades_truncated=message.trades_truncated,
    )


def batch_item_from_proto(message: pb.BatchResult) -> BatchItem:
    """One BatchResult; ValueError when it holds neither a response nor an error."""
    outcome = message.WhichOneof("outcome")
    if outcome == "response":
        return BatchItem(
            index=message.index,
            deal_id=message.deal_id,
            evaluation=evaluation_from_proto(message.response),
        )
    if outcome == "error":
        error = message.error
        return BatchItem(
            index=message.index,
            deal_id=message.deal_id,
            error=BatchError(
                code=error.code,
                message=error.message,
                field_violations=tuple(
                    FieldViolation(
                        field=item.field,
                        description=item.description,
                        reason=item.reason,
                        help=item.help,
                    )
                    for item in error.field_violations
                ),
            ),
        )
    raise ValueError(f"batch result {message.index} holds neither a response nor an error")


# -- vocabulary


def _field_info(message: pb.FieldInfo) -> FieldInfo:
    return FieldInfo(
        name=message.name,
        type=message.type,
        meaning=message.meaning,
        unit=message.unit,
        values=tuple(message.values),
        minimum=message.minimum if message.HasField("minimum") else None,
        maximum=message.maximum if message.HasField("maximum") else None,
        items=_field_info(message.items) if message.HasField("items") else None,
        fields=tuple(_field_info(child) for child in message.fields),
    )


def vocabulary_from_proto(message: pb.GetVocabularyResponse) -> Vocabulary:
    """A GetVocabularyResponse as a Vocabulary."""
    return Vocabulary(
        context_fields=tuple(_field_info(field) for field in message.context_fields),
        term_types=tuple(
            TermTypeInfo(
                name=term.name,
                meaning=term.meaning,
                fields=tuple(_field_info(field) for field in term.fields),
            )
            for term in message.term_types
        ),
    )


# -- rich error details


def status_details(status: Any) -> tuple[str, tuple[FieldViolation, ...]]:
    """The ErrorInfo reason and the BadRequest field violations of a google.rpc.Status.

    The server writes a violation's suggested fix into its description as
    "... (help: FIX)"; it comes back split into `description` and `help`.
    """
    reason = ""
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = str(info.reason)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(_bad_request_violation(item) for item in bad_request.field_violations)
    return reason, tuple(violations)


def _bad_request_violation(item: Any) -> FieldViolation:
    description, help_text = str(item.description), ""
    if match := _HELP.fullmatch(description):
        description, help_text = match["description"], match["help"]
    return FieldViolation(
        field=str(item.field), description=description, reason=str(item.reason), help=help_text
    )
