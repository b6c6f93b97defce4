"""OpenTelemetry tracing of the termdesk.v1 RPCs, exported over OTLP/gRPC; off by default.

Tracing is on when `--otlp-endpoint` is given or the standard variable
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the command
line resolves which; this module is imported only when tracing is on); every other
standard variable (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, ...) is read by the
OpenTelemetry SDK itself. Each call to a `termdesk.v1` service gets a server span (a
caller's `traceparent` makes it a child of the caller's trace); health checks and
reflection are not traced. While tracing is on, every log line written inside a span
carries its `trace_id` and `span_id`, so a decision record leads to its trace.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import filters, server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["Tracing", "add_trace_ids"]


class Tracing:
    """The tracer provider of one server process and its gRPC server interceptor."""

    def __init__(self, endpoint: str) -> None:
        resource = Resource.create({"service.name": "termdesk"})  # OTEL_SERVICE_NAME wins
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

    def interceptor(self) -> grpc.ServerInterceptor:
        interceptor: grpc.ServerInterceptor = server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider, filter_=filters.service_prefix("termdesk.v1.")
        )
        return interceptor

    def shutdown(self) -> None:
        """Exports the spans still buffered, then stops."""
        self.provider.shutdown()


def add_trace_ids(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids, in W3C hex."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
