"""The exceptions the client raises, one per gRPC status a caller handles differently.

TermdeskError                 base: `code`, `message`, `field_violations`, `reason`
├── InvalidPackageError       INVALID_ARGUMENT: fix the package (see `field_violations`)
├── RulesetNotFoundError      NOT_FOUND: no such ruleset or version
├── DeadlineExceededError     DEADLINE_EXCEEDED: the call's timeout passed
├── UnavailableError          UNAVAILABLE: no server answered, after the retries
├── RequestTooLargeError      RESOURCE_EXHAUSTED: a message passed a size limit
└── ServerError               INTERNAL and any other status; also an unreadable response

`reason` is the google.rpc.ErrorInfo reason the server sent (`INVALID_PACKAGE`,
`INVALID_REQUEST`, `RULESET_NOT_FOUND`), or "" when it sent none.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_status import rpc_status

from termdesk_client.convert import status_details
from termdesk_client.models import BatchError, FieldViolation

__all__ = [
    "DeadlineExceededError",
    "InvalidPackageError",
    "RequestTooLargeError",
    "RulesetNotFoundError",
    "ServerError",
    "TermdeskError",
    "UnavailableError",
    "error_from_batch",
    "error_from_rpc",
]


class TermdeskError(Exception):
    """A termdesk call failed; `code` is the gRPC status, `message` the server's words."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: Sequence[FieldViolation] = (),
        *,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field_violations = tuple(field_violations)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidPackageError(TermdeskError):
    """The package (or the request) does not fit: one field violation per problem.

    A violation's `field` is a path from the request root, such as
    `package.terms[0].fields.duration_month`, and its `help` a suggested fix.
    """


class RulesetNotFoundError(TermdeskError):
    """The server has no ruleset of that name, or no such version of it."""


class DeadlineExceededError(TermdeskError):
    """The call's deadline passed before an answer came; never retried."""


class UnavailableError(TermdeskError):
    """No server answered (down, restarting, unreachable) on any attempt."""


class RequestTooLargeError(TermdeskError):
    """A message passed a size limit: usually the request, over the server's maximum.

    The server applies its limit to responses too, so a large `explain=True` answer
    can also end here: the package was evaluated, but the answer could not be sent.
    """


class ServerError(TermdeskError):
    """The server failed (INTERNAL quotes a decision id for the operator) or answered
    with a status or a response this client does not expect."""


_CLASSES: dict[grpc.StatusCode, type[TermdeskError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidPackageError,
    grpc.StatusCode.NOT_FOUND: RulesetNotFoundError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RequestTooLargeError,
}


def _error(
    code: grpc.StatusCode,
    message: str,
    field_violations: Sequence[FieldViolation] = (),
    reason: str = "",
) -> TermdeskError:
    return _CLASSES.get(code, ServerError)(code, message, field_violations, reason=reason)


def error_from_rpc(error: grpc.RpcError) -> TermdeskError:
    """The exception for a failed call, with the rich details the server attached."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    reason: str = ""
    violations: tuple[FieldViolation, ...] = ()
    if isinstance(error, grpc.Call):
        try:
            status = rpc_status.from_call(error)
        except ValueError:  # details that disagree with the status: keep code and message
            status = None
        if status is not None:
            reason, violations = status_details(status)
    return _error(code, message, violations, reason)


def error_from_batch(error: BatchError) -> TermdeskError:
    """The exception Evaluate would have raised for this failed batch item."""
    code = grpc.StatusCode.__members__.get(error.code, grpc.StatusCode.UNKNOWN)
    return _error(code, error.message, error.field_violations)
