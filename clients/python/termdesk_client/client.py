"""TermdeskClient: one gRPC channel to a termdesk server, and its three calls.

Every call has a deadline (the client's `timeout` unless the call names one) and raises
a `TermdeskError` subclass instead of `grpc.RpcError`.

Retries: the three RPCs read only (an evaluation has no effect beyond the server's
decision log), so a call is retried when, and only when, it failed with UNAVAILABLE,
with exponential backoff. gRPC retries it itself, following the channel's service config
(`retry_service_config`); the deadline covers every attempt. INVALID_ARGUMENT, NOT_FOUND
and DEADLINE_EXCEEDED would only fail again, and are never retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from pydantic import ValidationError

from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk_client import convert
from termdesk_client.errors import InvalidPackageError, ServerError, error_from_rpc
from termdesk_client.models import BatchItem, Evaluation, FieldViolation, TermPackage, Vocabulary

__all__ = [
    "DEFAULT_TARGET",
    "MAX_ATTEMPTS",
    "SERVICE",
    "TermdeskClient",
    "as_package",
    "retry_service_config",
]

DEFAULT_TARGET = "localhost:50051"
SERVICE = "termdesk.v1.TermEvaluator"
# gRPC caps a retry policy's maxAttempts at 5 (the first attempt included).
MAX_ATTEMPTS = 5

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Message = TypeVar("_Message")
_Model = TypeVar("_Model")


def retry_service_config(retries: int) -> dict[str, Any]:
    """The channel service config: retry UNAVAILABLE up to `retries` times (at most 4).

    Backoff before retry n is random in [0, min(0.1 s * 2**(n-1), 1 s)].
    """
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, not {retries}")
    method_config: dict[str, Any] = {"name": [{"service": SERVICE}]}
    if retries > 0:
        method_config["retryPolicy"] = {
            "maxAttempts": min(retries + 1, MAX_ATTEMPTS),
            "initialBackoff": "0.1s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return {"methodConfig": [method_config]}


class TermdeskClient:
    """A client of termdesk.v1.TermEvaluator.

        with TermdeskClient("localhost:50051") as client:
            evaluation = client.evaluate(package)

    `credentials` (e.g. `grpc.ssl_channel_credentials()`) make a TLS channel; without
    them the channel is plaintext. `options` are extra gRPC channel options; one with
    the same key as the client's own (`grpc.service_config`, `grpc.enable_retries`)
    replaces it.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = 5.0,
        credentials: grpc.ChannelCredentials | None = None,
        retries: int = 3,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.target = target
        self.timeout = timeout
        merged: dict[str, Any] = {
            "grpc.enable_retries": 1,
            "grpc.service_config": json.dumps(retry_service_config(retries)),
        }
        merged.update(options)
        self.options: tuple[tuple[str, Any], ...] = tuple(merged.items())
        if credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, options=self.options)
        else:
            self._channel = grpc.insecure_channel(target, options=self.options)
        self._stub = pb_grpc.TermEvaluatorStub(self._channel)

    def evaluate(
        self,
        package: TermPackage | Mapping[str, Any],
        *,
        ruleset: str = "",
        version: int = 0,
        explain: bool = False,
        previous: TermPackage | Mapping[str, Any] | None = None,
        previous_decision_id: str = "",
        skip_trades: bool = False,
        timeout: float | None = None,
    ) -> Evaluation:
        """Evaluates one package against `ruleset` (default: the server's) at `version`
        (0: the active one). `explain` adds, per rule, whether it matched and what it read.
        `previous` (the last revision of the deal) marks each violation new, unchanged or
        changed; `skip_trades` leaves out trades and the counter-proposal.

        Raises InvalidPackageError (also before sending, when a mapping is not the shape
        of a package), RulesetNotFoundError, DeadlineExceededError, UnavailableError,
        RequestTooLargeError or ServerError.
        """
        request = pb.EvaluateRequest(
            ruleset=ruleset,
            ruleset_version=version,
            package=convert.package_to_proto(as_package(package)),
            explain=explain,
            previous_decision_id=previous_decision_id,
            skip_trades=skip_trades,
        )
        if previous is not None:
            request.previous_package.CopyFrom(convert.package_to_proto(as_package(previous)))
        response = self._call(self._stub.Evaluate, request, timeout)
        return _read(convert.evaluation_from_proto, response)

    def evaluate_batch(
        self,
        packages: Iterable[TermPackage | Mapping[str, Any]],
        *,
        ruleset: str = "",
        version: int = 0,
        timeout: float | None = None,
    ) -> list[BatchItem]:
        """Evaluates many packages against one ruleset version: one item per package, in
        order. A package that does not fit gets an item with `error`; the call itself
        raises only for what fails the whole batch (an unknown ruleset, too many
        packages, the deadline, ...).
        """
        request = pb.EvaluateBatchRequest(
            ruleset=ruleset,
            ruleset_version=version,
            packages=[
                convert.package_to_proto(as_package(package, f"packages[{index}]"))
                for index, package in enumerate(packages)
            ],
        )
        response = self._call(self._stub.EvaluateBatch, request, timeout)
        return [_read(convert.batch_item_from_proto, result) for result in response.results]

    def vocabulary(self, *, timeout: float | None = None) -> Vocabulary:
        """The term types and fields a package may hold, with types, units and meanings."""
        response = self._call(self._stub.GetVocabulary, pb.GetVocabularyRequest(), timeout)
        return _read(convert.vocabulary_from_proto, response)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled. Safe to call twice."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TermdeskClient({self.target!r}, timeout={self.timeout})"

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        timeout: float | None,
    ) -> _Response:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from error


def as_package(package: TermPackage | Mapping[str, Any], path: str = "package") -> TermPackage:
    """The package as a model, e.g. from parsed JSON; the calls use it before sending.

    A mapping that is not the shape of a package (a missing term `type`, an unknown key,
    a value JSON cannot hold) raises InvalidPackageError, its field violations under `path`.
    Whether the fields fit the vocabulary is for the server to say.
    """
    if isinstance(package, TermPackage):
        return package
    try:
        return TermPackage.model_validate(package)
    except ValidationError as error:
        raise InvalidPackageError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{path} is not a term package: {error.error_count()} problem(s)",
            [
                FieldViolation(
                    field=_path(path, problem["loc"]),
                    description=problem["msg"],
                    reason=problem["type"],
                )
                for problem in error.errors()
            ],
            reason="INVALID_PACKAGE",
        ) from error


def _path(root: str, location: tuple[int | str, ...]) -> str:
    """`package` + ("terms", 0, "type") is `package.terms[0].type`."""
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)


def _read(reader: Callable[[_Message], _Model], message: _Message) -> _Model:
    """Converts a response, reporting a shape the contract does not allow as a ServerError."""
    try:
        return reader(message)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ServerError(
            grpc.StatusCode.UNKNOWN, f"unreadable response from the server: {error}"
        ) from error
