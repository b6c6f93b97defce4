"""The RulesetAdmin servicer: authenticate, authorise, call `PolicyAdmin`, audit, convert.

Every call, refused or not, leaves one audit record (who, what, target, outcome) in the
store and one `admin` line in the log; the token itself never appears in either.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from termdesk.api.errors import status_for
from termdesk.audit import AuditTrail
from termdesk.auth import ADMIN_READ, ADMIN_WRITE, Principal, Role, Tokens, UnauthenticatedError
from termdesk.logs import get_logger
from termdesk.model import Decision
from termdesk.policy import Check, PolicyAdmin, RulesetRejectedError
from termdesk.ruleset.diagnostics import Level
from termdesk.store.base import StoredVersion
from termdesk.v1 import admin_pb2 as pb
from termdesk.v1 import admin_pb2_grpc as pb_grpc
from termdesk.v1 import termdesk_pb2

__all__ = ["EvaluateTokenInterceptor", "RulesetAdminServicer", "check_to_proto"]

log = get_logger("termdesk.admin")

T = TypeVar("T")

DEFAULT_IMPACT_LIMIT = 1000
_MAX_FAILURES = 5


class RulesetAdminServicer(pb_grpc.RulesetAdminServicer):
    def __init__(self, admin: PolicyAdmin, tokens: Tokens) -> None:
        self.admin = admin
        self.tokens = tokens
        self.audit = AuditTrail(admin.store, "grpc")

    def ValidateRuleset(  # noqa: N802 (generated gRPC method name)
        self, request: pb.ValidateRulesetRequest, context: grpc.ServicerContext
    ) -> pb.ValidateRulesetResponse:
        return self._call(
            context,
            "ValidateRuleset",
            ADMIN_READ,
            "",
            lambda _: check_to_proto(self.admin.validate(request.source)),
        )

    def PublishRuleset(  # noqa: N802 (generated gRPC method name)
        self, request: pb.PublishRulesetRequest, context: grpc.ServicerContext
    ) -> pb.PublishRulesetResponse:
        expected = request.expected_version if request.HasField("expected_version") else None

        def publish(principal: Principal) -> pb.PublishRulesetResponse:
            stored = self.admin.publish(
                request.source,
                name=request.name,
                expected_version=expected,
                comment=request.comment,
                author=principal.name,
            )
            return pb.PublishRulesetResponse(
                version=stored.version, digest=stored.digest, ruleset=_version(stored)
            )

        return self._call(
            context,
            "PublishRuleset",
            ADMIN_WRITE,
            request.name,
            publish,
            describe=lambda response: f"published version {response.version} ({response.digest})",
        )

    def GetRuleset(  # noqa: N802 (generated gRPC method name)
        self, request: pb.GetRulesetRequest, context: grpc.ServicerContext
    ) -> pb.GetRulesetResponse:
        def get(_: Principal) -> pb.GetRulesetResponse:
            stored = self.admin.get(request.name, request.version)
            return pb.GetRulesetResponse(ruleset=_version(stored), source=stored.source)

        return self._call(context, "GetRuleset", ADMIN_READ, _target(request), get)

    def ListRulesets(  # noqa: N802 (generated gRPC method name)
        self, request: pb.ListRulesetsRequest, context: grpc.ServicerContext
    ) -> pb.ListRulesetsResponse:
        def list_all(_: Principal) -> pb.ListRulesetsResponse:
            return pb.ListRulesetsResponse(
                rulesets=[
                    pb.RulesetSummary(
                        name=s.name,
                        active_version=s.active_version,
                        latest_version=s.latest_version,
                        active_digest=s.active_digest,
                    )
                    for s in self.admin.summaries()
                ]
            )

        return self._call(context, "ListRulesets", ADMIN_READ, "", list_all)

    def ListRulesetVersions(  # noqa: N802 (generated gRPC method name)
        self, request: pb.ListRulesetVersionsRequest, context: grpc.ServicerContext
    ) -> pb.ListRulesetVersionsResponse:
        return self._call(
            context,
            "ListRulesetVersions",
            ADMIN_READ,
            request.name,
            lambda _: pb.ListRulesetVersionsResponse(
                versions=[_version(v) for v in self.admin.versions(request.name)]
            ),
        )

    def ActivateRulesetVersion(  # noqa: N802 (generated gRPC method name)
        self, request: pb.ActivateRulesetVersionRequest, context: grpc.ServicerContext
    ) -> pb.ActivateRulesetVersionResponse:
        def activate(_: Principal) -> pb.ActivateRulesetVersionResponse:
            stored, previous = self.admin.activate(request.name, request.version)
            return pb.ActivateRulesetVersionResponse(
                ruleset=_version(stored), previous_version=previous
            )

        return self._call(
            context,
            "ActivateRulesetVersion",
            ADMIN_WRITE,
            _target(request),
            activate,
            describe=lambda response: (
                f"version {response.previous_version} -> {response.ruleset.version}"
            ),
        )

    def DiffRulesetVersions(  # noqa: N802 (generated gRPC method name)
        self, request: pb.DiffRulesetVersionsRequest, context: grpc.ServicerContext
    ) -> pb.DiffRulesetVersionsResponse:
        def diff(_: Principal) -> pb.DiffRulesetVersionsResponse:
            found = self.admin.diff(request.name, request.from_version, request.to_version)
            return pb.DiffRulesetVersionsResponse(
                added_rule_ids=found.added_rules,
                removed_rule_ids=found.removed_rules,
                changed_rules=[
                    pb.RuleChange(rule_id=c.rule_id, changed_keys=c.changed_keys)
                    for c in found.changed_rules
                ],
                changed_parameters=[
                    pb.ParameterChange(name=p.name, from_value=p.before, to_value=p.after)
                    for p in found.changed_parameters
                ],
            )

        target = f"{request.name}@{request.from_version}..{request.to_version or 'active'}"
        return self._call(context, "DiffRulesetVersions", ADMIN_READ, target, diff)

    def AnalyzeImpact(  # noqa: N802 (generated gRPC method name)
        self, request: pb.AnalyzeImpactRequest, context: grpc.ServicerContext
    ) -> pb.AnalyzeImpactResponse:
        def impact(_: Principal) -> pb.AnalyzeImpactResponse:
            report, active = self.admin.impact(
                request.source,
                since=request.start_time.ToDatetime(tzinfo=UTC)
                if request.HasField("start_time")
                else None,
                limit=request.limit or DEFAULT_IMPACT_LIMIT,
            )
            return pb.AnalyzeImpactResponse(
                replayed=report.replayed,
                changed=len(report.changes),
                skipped=report.skipped,
                active_version=active,
                transitions=[
                    pb.DecisionTransition(
                        from_decision=_decision(before), to_decision=_decision(after), count=n
                    )
                    for before, after, n in report.transitions()
                ],
                changes=[
                    pb.DecisionChange(
                        deal_id=c.deal_id,
                        decision_id=c.decision_id,
                        from_decision=_decision(c.before),
                        to_decision=_decision(c.after),
                    )
                    for c in report.changes
                ],
            )

        return self._call(context, "AnalyzeImpact", ADMIN_READ, "", impact)

    # -- the one path every call takes

    def _call(
        self,
        context: grpc.ServicerContext,
        action: str,
        allowed: frozenset[Role],
        target: str,
        work: Callable[[Principal], T],
        *,
        describe: Callable[[T], str] = lambda _: "",
    ) -> T:
        principal: Principal | None = None
        try:
            principal = self.tokens.authenticate(context.invocation_metadata())
            self.tokens.authorize(principal, allowed, action)
            result = work(principal)
        except Exception as error:
            extra = []
            if isinstance(error, RulesetRejectedError):
                extra.append(check_to_proto(error.check, failures_only=True))
            status = status_for(error, extra=extra)
            internal = status.code is grpc.StatusCode.INTERNAL
            if internal:
                log.exception("admin call failed", action=action)
            self.audit.record(principal, action, target, status.code.name, status.details)
            context.abort_with_status(status)
            raise AssertionError("abort_with_status returned") from error  # pragma: no cover
        self.audit.record(principal, action, target, "OK", describe(result))
        return result


def check_to_proto(check: Check, *, failures_only: bool = False) -> pb.ValidateRulesetResponse:
    """The check as an answer; `failures_only` keeps the first errors and failed cases
    (status details travel in metadata, which clients cap at 8-16 KB)."""
    diagnostics = check.diagnostics
    tests = check.tests
    if failures_only:
        diagnostics = tuple(d for d in diagnostics if d.level is Level.ERROR)[:_MAX_FAILURES]
        tests = tuple(r for r in tests if not r.passed)[:_MAX_FAILURES]
    return pb.ValidateRulesetResponse(
        ok=check.ok,
        name=check.ruleset.name if check.ruleset else "",
        digest=check.ruleset.digest if check.ruleset else "",
        diagnostics=[
            pb.Diagnostic(
                code=d.code,
                message=d.message,
                line=d.line,
                column=d.column,
                rule_id=d.rule_id,
                help=d.help,
                level=pb.DIAGNOSTIC_LEVEL_ERROR
                if d.level is Level.ERROR
                else pb.DIAGNOSTIC_LEVEL_WARNING,
            )
            for d in diagnostics
        ],
        tests=[
            pb.TestCaseResult(
                name=r.case.name,
                line=r.case.line,
                passed=r.passed,
                failures=[f[:300] for f in r.failures] if failures_only else r.failures,
            )
            for r in tests
        ],
    )


def _version(stored: StoredVersion) -> pb.RulesetVersion:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(stored.created_at)
    return pb.RulesetVersion(
        name=stored.name,
        version=stored.version,
        digest=stored.digest,
        author=stored.author,
        comment=stored.comment,
        create_time=created,
        active=stored.active,
    )


def _decision(decision: Decision) -> termdesk_pb2.Decision.ValueType:
    return termdesk_pb2.Decision.Value(f"DECISION_{decision.value}")


def _target(request: pb.GetRulesetRequest | pb.ActivateRulesetVersionRequest) -> str:
    return f"{request.name}@{request.version or 'active'}"


class EvaluateTokenInterceptor(grpc.ServerInterceptor):
    """TermEvaluator calls need a token of any role; with `loopback_open` (the default
    `--evaluate-auth loopback`), calls from this machine's loopback need none."""

    _PREFIX = "/termdesk.v1.TermEvaluator/"

    def __init__(self, tokens: Tokens, *, loopback_open: bool = False) -> None:
        self.tokens = tokens
        self.loopback_open = loopback_open

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if not handler_call_details.method.startswith(self._PREFIX):
            return continuation(handler_call_details)
        try:
            self.tokens.authenticate(handler_call_details.invocation_metadata)
        except UnauthenticatedError as error:
            message = str(error)
        else:
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        inner = handler.unary_unary if handler is not None else None
        if inner is None or handler is None or not self.loopback_open:

            def deny(request: object, context: grpc.ServicerContext) -> None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

            return grpc.unary_unary_rpc_method_handler(deny)

        def loopback_only(request: Any, context: grpc.ServicerContext) -> Any:
            if not is_loopback(context.peer()):
                context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{message} (only calls from this machine need no token)",
                )
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            loopback_only,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def is_loopback(peer: str) -> bool:
    """Whether a gRPC peer (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:...`) is local."""
    kind, _, address = urllib.parse.unquote(peer).partition(":")
    if kind == "unix":
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
