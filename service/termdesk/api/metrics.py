"""Prometheus metrics of the gRPC service: what is counted, and the /metrics endpoint.

Everything is observed on the wire, by a server interceptor, so the servicer and the
domain stay free of metrics code: every unary call is counted by method and status code
and timed; an `EvaluateResponse` (alone, or inside a batch) counts its decision, its
violations by rule id and its trades, offered and verified; an unpinned evaluation
records the active version of its ruleset. The engine reports its sessions through
`termdesk.engine.SESSION_HOOKS`.

| metric | type | labels |
|---|---|---|
| `grpc_server_handled_total` | counter | grpc_service, grpc_method, grpc_code |
| `grpc_server_handling_seconds` | histogram | grpc_service, grpc_method |
| `termdesk_decisions_total` | counter | ruleset, decision |
| `termdesk_violations_total` | counter | ruleset, rule_id, severity |
| `termdesk_trades_offered_total` | counter | ruleset |
| `termdesk_trades_verified_total` | counter | ruleset |
| `termdesk_active_ruleset_version` | gauge | ruleset |
| `termdesk_engine_sessions_total` | counter | |

With `--workers N` the processes share one endpoint through prometheus-client's
multiprocess mode: each process writes its values to memory-mapped files under
`PROMETHEUS_MULTIPROC_DIR` and the first process, which serves /metrics, adds them up.
prometheus-client picks that mode when it is first imported, so this module is imported
only once metrics are turned on, after `serve` has set the variable.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

from termdesk import engine
from termdesk.v1 import termdesk_pb2 as pb

__all__ = ["MULTIPROCESS_ENV", "Metrics", "MetricsEndpoint"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Evaluations take about a millisecond; batches and explained answers up to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_Handler = Callable[[Any, grpc.ServicerContext], Any]


class MetricsEndpoint:
    """The HTTP server of /metrics, running in a daemon thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self._server, self._thread = start_http_server(port, host.strip("[]"), registry)
        self.port: int = self._server.server_port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Metrics:
    """The metrics of one server process; `interceptor` is what the gRPC server adds."""

    def __init__(self) -> None:
        self.multiprocess = MULTIPROCESS_ENV in os.environ
        self.registry = CollectorRegistry()
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        # In multiprocess mode values live in files; the collector above reads them all.
        own = None if self.multiprocess else self.registry
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=own,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from receiving a request to answering it, by method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.decisions = Counter(
            "termdesk_decisions",
            "Evaluations answered, by ruleset and decision (APPROVE, NEEDS_APPROVAL, REJECT).",
            ["ruleset", "decision"],
            registry=own,
        )
        self.violations = Counter(
            "termdesk_violations",
            "Violations reported, by ruleset, rule id and severity.",
            ["ruleset", "rule_id", "severity"],
            registry=own,
        )
        self.trades_offered = Counter(
            "termdesk_trades_offered",
            "Trades offered in answers, by ruleset.",
            ["ruleset"],
            registry=own,
        )
        self.trades_verified = Counter(
            "termdesk_trades_verified",
            "Offered trades that were verified to clear their violation, by ruleset.",
            ["ruleset"],
            registry=own,
        )
        self.active_version = Gauge(
            "termdesk_active_ruleset_version",
            "The active version of each ruleset (the one unpinned requests get).",
            ["ruleset"],
            multiprocess_mode="mostrecent",
            registry=own,
        )
        self.sessions = Counter(
            "termdesk_engine_sessions",
            "durable_rules sessions run (one per evaluation, more for explain and trades).",
            registry=own,
        )
        # Labelled children by label values: `labels()` validates on every call.
        self._children: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    # -- what the server calls

    def install(self) -> None:
        """Counts the engine's sessions from now on."""
        engine.SESSION_HOOKS.started = self.sessions.inc

    def add_ruleset(self, ruleset: str, version: int) -> None:
        """Records the active version; every decision and trade count starts at 0."""
        self.set_active(ruleset, version)
        for decision in ("APPROVE", "NEEDS_APPROVAL", "REJECT"):
            self._child(self.decisions, ruleset, decision)
        self._child(self.trades_offered, ruleset)
        self._child(self.trades_verified, ruleset)

    def set_active(self, ruleset: str, version: int) -> None:
        self._child(self.active_version, ruleset).set(version)

    def interceptor(self) -> grpc.ServerInterceptor:
        return _Interceptor(self)

    def serve(self, host: str, port: int) -> MetricsEndpoint:
        """Starts /metrics on `host:port` (0 picks a free port)."""
        return MetricsEndpoint(host, port, self.registry)

    # -- observation

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def observe_call(
        self, method: str, code: grpc.StatusCode, seconds: float, request: Any, response: Any
    ) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self._child(self.handled, service, name, code.name).inc()
        self._child(self.handling, service, name).observe(seconds)
        if isinstance(response, pb.EvaluateResponse):
            self.observe_evaluation(response, pinned=request.ruleset_version != 0)
        elif isinstance(response, pb.EvaluateBatchResponse):
            for result in response.results:
                if result.HasField("response"):
                    self.observe_evaluation(result.response, pinned=request.ruleset_version != 0)

    def observe_evaluation(self, response: pb.EvaluateResponse, *, pinned: bool) -> None:
        ruleset = response.ruleset.name
        decision = pb.Decision.Name(response.decision).removeprefix("DECISION_")
        self._child(self.decisions, ruleset, decision).inc()
        for violation in response.violations:
            severity = pb.Severity.Name(violation.severity).removeprefix("SEVERITY_")
            self._child(self.violations, ruleset, violation.rule_id, severity).inc()
        if response.trades:
            self._child(self.trades_offered, ruleset).inc(len(response.trades))
            verified = sum(trade.verified for trade in response.trades)
            if verified:
                self._child(self.trades_verified, ruleset).inc(verified)
        if not pinned:
            self.set_active(ruleset, response.ruleset.version)


class _Interceptor(grpc.ServerInterceptor):
    """Wraps every unary-unary handler (streams, such as health Watch, pass unwrapped)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._timed(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped

    def _timed(self, method: str, behaviour: _Handler) -> _Handler:
        observe = self.metrics.observe_call

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            response = None
            failed = True
            try:
                response = behaviour(request, context)
                failed = False
                return response
            finally:
                # ServicerContext.code() exists since grpcio 1.38; the stubs lack it.
                set_code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
                fallback = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
                elapsed = time.perf_counter() - started
                observe(method, set_code or fallback, elapsed, request, response)

        return timed
