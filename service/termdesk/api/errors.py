"""Maps termdesk errors to gRPC statuses with rich details: the one place that decides codes.

PackageError            INVALID_ARGUMENT + google.rpc.BadRequest (one violation a problem)
RequestError            INVALID_ARGUMENT + google.rpc.BadRequest (request-level limits)
RulesetNotFoundError    NOT_FOUND
DeadlineError           DEADLINE_EXCEEDED
RulesetRejectedError    INVALID_ARGUMENT + google.rpc.BadRequest (one violation a diagnostic)
VersionConflictError    ABORTED
UnauthenticatedError    UNAUTHENTICATED
PermissionDeniedError   PERMISSION_DENIED
StoreError              UNAVAILABLE (the store cannot be reached; retry)
anything else           INTERNAL, naming the decision id only (details go to the log)
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from termdesk.auth import PermissionDeniedError, UnauthenticatedError
from termdesk.errors import PackageError, Problem, RulesetNotFoundError, TermdeskError
from termdesk.policy import RulesetRejectedError
from termdesk.ruleset.diagnostics import Level
from termdesk.store.base import StoreError, VersionConflictError

__all__ = ["DOMAIN", "DeadlineError", "RequestError", "field_violations", "status_for"]

DOMAIN = "termdesk.v1"
_MAX_PROBLEMS_IN_MESSAGE = 5
_MAX_DETAILED = 5
# Status details travel base64-encoded in the `grpc-status-details-bin` trailer, and gRPC
# clients refuse metadata over 8 KiB by default (the call then fails RESOURCE_EXHAUSTED):
# field violations beyond this many serialized bytes are counted, not sent.
_MAX_FIELD_VIOLATION_BYTES = 4096


class RequestError(TermdeskError):
    """A request breaks a limit or names nothing valid; `problems` say which field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class DeadlineError(TermdeskError):
    """The caller's deadline passed; the work was abandoned."""


def field_violations(
    problems: Sequence[Problem], prefix: str
) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """One BadRequest field violation per problem, paths from the request root."""
    return [
        error_details_pb2.BadRequest.FieldViolation(
            field=f"{prefix}.{problem.path}" if problem.path else prefix,
            description=f"{problem.message} (help: {problem.help})"
            if problem.help
            else problem.message,
            reason=problem.code,
        )
        for problem in problems
    ]


def status_for(
    error: Exception, decision_id: str = "", *, extra: Sequence[Message] = ()
) -> grpc.Status:
    """The status a failed call answers with (`extra` details are added where it fits)."""
    admin = _admin_status(error, extra)
    if admin is not None:
        return admin
    if isinstance(error, PackageError | RequestError):
        prefix = "package" if isinstance(error, PackageError) else ""
        problems = error.problems
        shown = "; ".join(str(problem) for problem in problems[:_MAX_PROBLEMS_IN_MESSAGE])
        more = len(problems) - _MAX_PROBLEMS_IN_MESSAGE
        what = "the package does not fit the vocabulary" if prefix else "invalid request"
        message = f"{what}: {shown}" + (f" (and {more} more)" if more > 0 else "")
        violations = [
            violation
            for violation in field_violations(problems, prefix)
            if violation.field.strip(".")
        ]
        for violation in violations:
            violation.field = violation.field.lstrip(".")
        sent = _within_budget(violations)
        reason = "INVALID_PACKAGE" if prefix else "INVALID_REQUEST"
        counts = {
            "field_violations": str(len(violations)),
            "omitted": str(len(violations) - len(sent)),
        }
        return _status(
            code_pb2.INVALID_ARGUMENT,
            message,
            error_details_pb2.BadRequest(field_violations=sent),
            error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=counts),
        )
    if isinstance(error, RulesetNotFoundError):
        return _status(
            code_pb2.NOT_FOUND,
            str(error),
            error_details_pb2.ErrorInfo(reason="RULESET_NOT_FOUND", domain=DOMAIN),
        )
    if isinstance(error, DeadlineError):
        return _status(code_pb2.DEADLINE_EXCEEDED, str(error) or "deadline exceeded")
    return _status(
        code_pb2.INTERNAL,
        f"internal error while evaluating; quote decision id {decision_id} to the operator",
    )


def _admin_status(error: Exception, extra: Sequence[Message]) -> grpc.Status | None:
    if isinstance(error, RulesetRejectedError):
        check = error.check
        violations = (
            [
                error_details_pb2.BadRequest.FieldViolation(
                    field="source" if d.code != "name_mismatch" else "name",
                    description=str(d),
                    reason=d.code,
                )
                for d in check.diagnostics
                if d.level is Level.ERROR
            ]
            + [
                error_details_pb2.BadRequest.FieldViolation(
                    field="source",
                    description=_clip(
                        f"test `{result.case.name}` (line {result.case.line}): "
                        + "; ".join(result.failures)
                    ),
                    reason="test_failed",
                )
                for result in check.tests
                if not result.passed
            ]
        )[:_MAX_DETAILED]  # status details travel in metadata, which is limited to 8-16 KB
        return _status(
            code_pb2.INVALID_ARGUMENT,
            _clip(f"ruleset refused: {error}", 1000),
            error_details_pb2.BadRequest(field_violations=violations),
            error_details_pb2.ErrorInfo(reason="RULESET_REJECTED", domain=DOMAIN),
            *extra,
        )
    if isinstance(error, VersionConflictError):
        return _status(
            code_pb2.ABORTED,
            str(error),
            error_details_pb2.ErrorInfo(
                reason="VERSION_CONFLICT",
                domain=DOMAIN,
                metadata={"latest_version": str(error.latest)},
            ),
        )
    if isinstance(error, UnauthenticatedError):
        return _status(code_pb2.UNAUTHENTICATED, str(error))
    if isinstance(error, PermissionDeniedError):
        return _status(code_pb2.PERMISSION_DENIED, str(error))
    if isinstance(error, StoreError):
        return _status(code_pb2.UNAVAILABLE, "the ruleset store is unavailable; retry")
    return None


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _within_budget(
    violations: list[error_details_pb2.BadRequest.FieldViolation],
) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The leading violations whose serialized size fits the trailer budget."""
    size = 0
    for count, violation in enumerate(violations):
        size += violation.ByteSize() + 4  # tag and length of the repeated field
        if size > _MAX_FIELD_VIOLATION_BYTES:
            return violations[:count]
    return violations


def _status(code: int, message: str, *details: Message) -> grpc.Status:
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))
