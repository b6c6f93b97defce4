"""The TermEvaluator servicer: convert the request, call the domain, convert the answer."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Set
from dataclasses import dataclass, field
from typing import NoReturn

import grpc

from termdesk.api import convert
from termdesk.api.errors import DeadlineError, RequestError, field_violations, status_for
from termdesk.decisionlog import DecisionLog
from termdesk.errors import PackageError, Problem
from termdesk.evaluator import Evaluator, Match
from termdesk.explain import explain
from termdesk.jsonview import package_json
from termdesk.logs import get_logger
from termdesk.model import Evaluation, TermPackage, TradeAdvice
from termdesk.registry import RulesetRegistry
from termdesk.revision import compare
from termdesk.trades import TradeAdvisor, TradeLimits
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk.vocabulary import Limits, Vocabulary, check_package

__all__ = ["RequestLimits", "TermEvaluatorServicer"]

log = get_logger("termdesk.evaluate")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Per-request bounds: package sizes (vocabulary limits) and packages per batch."""

    package: Limits = field(default_factory=Limits)
    max_batch: int = 1000
    trades: TradeLimits = field(default_factory=TradeLimits)


class TermEvaluatorServicer(pb_grpc.TermEvaluatorServicer):
    def __init__(
        self,
        registry: RulesetRegistry,
        vocabulary: Vocabulary,
        limits: RequestLimits,
        *,
        log_packages: bool = False,
        decision_log: DecisionLog | None = None,
    ) -> None:
        self.registry = registry
        self.decision_log = decision_log
        self.vocabulary = vocabulary
        self.limits = limits
        self.log_packages = log_packages
        self._vocabulary_response = convert.vocabulary_to_proto(vocabulary)

    def Evaluate(  # noqa: N802 (generated gRPC method name)
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        decision_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            _check_deadline(context)
            _check_version(request.ruleset_version)
            evaluator = self.registry.evaluator(request.ruleset, request.ruleset_version)
            package = self._package(request.package)
            previous = (
                self._previous_package(request.previous_package)
                if request.HasField("previous_package")
                else None
            )
            matches = evaluator.matches(package)
            evaluation = evaluator.evaluation_of(package, matches)
            explanations = explain(evaluator, package, matches) if request.explain else []
            advice = None if request.skip_trades else self._advise(evaluator, package, matches)
            revision = (
                compare(
                    previous,
                    evaluator.evaluate(previous).violations,
                    package,
                    evaluation.violations,
                )
                if previous is not None
                else None
            )
        except Exception as error:
            self._fail(context, error, decision_id, request.package.deal_id)
        self._log(
            decision_id,
            package,
            evaluation,
            started,
            advice=advice,
            previous_decision_id=request.previous_decision_id,
        )
        response = convert.evaluation_to_proto(evaluation, decision_id, explanations)
        if advice is not None:
            convert.add_advice(response, advice)
        if revision is not None:
            convert.add_revision(response, revision)
        return response

    def EvaluateBatch(  # noqa: N802 (generated gRPC method name)
        self, request: pb.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateBatchResponse:
        try:
            self._check_batch_size(len(request.packages))
            _check_version(request.ruleset_version)
            evaluator = self.registry.evaluator(request.ruleset, request.ruleset_version)
        except Exception as error:
            self._fail(context, error, "", "")
        results = []
        for index, message in enumerate(request.packages):
            if not context.is_active() or _deadline_passed(context):
                log.warning(
                    "batch abandoned", reason="deadline", done=index, size=len(request.packages)
                )
                self._fail(context, DeadlineError("deadline exceeded"), "", "")
            results.append(
                self._batch_item(evaluator, index, message, with_trades=not request.skip_trades)
            )
        return pb.EvaluateBatchResponse(results=results)

    def GetVocabulary(  # noqa: N802 (generated gRPC method name)
        self, request: pb.GetVocabularyRequest, context: grpc.ServicerContext
    ) -> pb.GetVocabularyResponse:
        return self._vocabulary_response

    # -- helpers

    def _check_batch_size(self, size: int) -> None:
        if size > self.limits.max_batch:
            raise RequestError(
                [
                    Problem(
                        "packages",
                        "too_many",
                        f"a batch holds at most {self.limits.max_batch} packages, not {size}",
                        "split the batch",
                    )
                ]
            )

    def _package(self, message: pb.TermPackage) -> TermPackage:
        return check_package(convert.package_to_json(message), self.vocabulary, self.limits.package)

    def _previous_package(self, message: pb.TermPackage) -> TermPackage:
        try:
            return self._package(message)
        except PackageError as error:
            raise RequestError(
                [
                    dataclasses.replace(problem, path=f"previous_package.{problem.path}")
                    for problem in error.problems
                ]
            ) from error

    def _advise(
        self, evaluator: Evaluator, package: TermPackage, matches: Set[Match]
    ) -> TradeAdvice:
        return TradeAdvisor(evaluator, self.vocabulary, self.limits.trades).advise(package, matches)

    def _batch_item(
        self, evaluator: Evaluator, index: int, message: pb.TermPackage, *, with_trades: bool
    ) -> pb.BatchResult:
        decision_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            package = self._package(message)
            matches = evaluator.matches(package)
            evaluation = evaluator.evaluation_of(package, matches)
            advice = self._advise(evaluator, package, matches) if with_trades else None
        except PackageError as error:
            return pb.BatchResult(
                index=index,
                deal_id=message.deal_id,
                error=pb.BatchError(
                    code="INVALID_ARGUMENT",
                    message=status_for(error).details,
                    field_violations=[
                        pb.FieldViolation(
                            field=violation.field,
                            description=problem.message,
                            reason=problem.code,
                            help=problem.help,
                        )
                        for violation, problem in zip(
                            field_violations(error.problems, "package"),
                            error.problems,
                            strict=True,
                        )
                    ],
                ),
            )
        except Exception:
            log.exception("evaluation failed", decision_id=decision_id, deal_id=message.deal_id)
            return pb.BatchResult(
                index=index,
                deal_id=message.deal_id,
                error=pb.BatchError(
                    code="INTERNAL", message=status_for(Exception(), decision_id).details
                ),
            )
        self._log(decision_id, package, evaluation, started, advice=advice)
        response = convert.evaluation_to_proto(evaluation, decision_id)
        if advice is not None:
            convert.add_advice(response, advice)
        return pb.BatchResult(index=index, deal_id=package.deal_id, response=response)

    def _fail(
        self, context: grpc.ServicerContext, error: Exception, decision_id: str, deal_id: str
    ) -> NoReturn:
        status = status_for(error, decision_id)
        if status.code is grpc.StatusCode.INTERNAL:
            log.error(
                "evaluation failed",
                decision_id=decision_id,
                deal_id=deal_id,
                exc_info=error,
            )
        context.abort_with_status(status)
        raise AssertionError("abort_with_status returned")  # pragma: no cover

    def _log(
        self,
        decision_id: str,
        package: TermPackage,
        evaluation: Evaluation,
        started: float,
        *,
        advice: TradeAdvice | None = None,
        previous_decision_id: str = "",
    ) -> None:
        ruleset = evaluation.ruleset
        record: dict[str, object] = {
            "decision_id": decision_id,
            "deal_id": package.deal_id,
            "ruleset": ruleset.name,
            "ruleset_version": ruleset.version,
            "ruleset_digest": ruleset.digest,
            "decision": evaluation.decision.value,
            "rule_ids": sorted({violation.rule_id for violation in evaluation.violations}),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if advice is not None:
            record["trades"] = len(advice.trades)
            record["trades_verified"] = sum(trade.verified for trade in advice.trades)
            record["trade_engine_calls"] = advice.engine_calls
        if previous_decision_id:
            record["previous_decision_id"] = previous_decision_id
        if self.log_packages:
            record["package"] = package_json(package)
        log.info("evaluation", **record)
        if self.decision_log is not None:
            self.decision_log.record(decision_id, package, evaluation)


def _deadline_passed(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _check_version(version: int) -> None:
    if version < 0:
        raise RequestError(
            [
                Problem(
                    "ruleset_version",
                    "out_of_range",
                    f"`ruleset_version` must be 0 (the active version) or more, not {version}",
                )
            ]
        )


def _check_deadline(context: grpc.ServicerContext) -> None:
    if _deadline_passed(context):
        raise DeadlineError("deadline exceeded before evaluation started")
