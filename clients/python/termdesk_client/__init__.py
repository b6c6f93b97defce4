"""termdesk_client: a typed Python client of the termdesk.v1 gRPC service.

    from termdesk_client import TermdeskClient

    with TermdeskClient("localhost:50051") as client:
        evaluation = client.evaluate(package)

Modules: `models` (the contract as frozen pydantic models), `convert` (models <-> the
generated messages), `errors` (one exception per status), `client` (the channel and calls).
It needs grpcio, grpcio-status, protobuf, pydantic and the generated `termdesk.v1` stubs.
"""

from __future__ import annotations

from termdesk_client.client import DEFAULT_TARGET, TermdeskClient, as_package, retry_service_config
from termdesk_client.errors import (
    DeadlineExceededError,
    InvalidPackageError,
    RequestTooLargeError,
    RulesetNotFoundError,
    ServerError,
    TermdeskError,
    UnavailableError,
    error_from_batch,
)
from termdesk_client.models import (
    BatchError,
    BatchItem,
    Change,
    Decision,
    Evaluation,
    FieldInfo,
    FieldViolation,
    RuleExplanation,
    RulesetRef,
    Severity,
    Term,
    TermPackage,
    TermTypeInfo,
    Trade,
    Violation,
    Vocabulary,
)

__all__ = [
    "DEFAULT_TARGET",
    "BatchError",
    "BatchItem",
    "Change",
    "CounterProposalOutcome",
    "DeadlineExceededError",
    "Decision",
    "Evaluation",
    "FieldInfo",
    "FieldViolation",
    "InvalidPackageError",
    "RequestTooLargeError",
    "RuleExplanation",
    "RulesetNotFoundError",
    "RulesetRef",
    "ServerError",
    "Severity",
    "Term",
    "TermPackage",
    "TermTypeInfo",
    "TermdeskClient",
    "TermdeskError",
    "Trade",
    "UnavailableError",
    "Violation",
    "Vocabulary",
    "as_package",
    "error_from_batch",
    "retry_service_config",
]
