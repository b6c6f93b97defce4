"""Tests of RPC tracing as an operator meets it: `termdesk serve --otlp-endpoint` in a
subprocess exporting to a real OTLP/gRPC receiver run by the test (the collector's
TraceService from opentelemetry-proto), and the decision log carrying the trace id."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)

import test_server
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from test_server import CALL_TIMEOUT, CLEAN_PACKAGE, ServerProcess, evaluate_request

# Short-lived servers for one test, stopped after it.
launch = test_server.launch

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
EVALUATE_SPAN = "/termdesk.v1.TermEvaluator/Evaluate"


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver: every exported span, by name, with its hex trace id."""

    def __init__(self) -> None:
        self.spans: queue.Queue[tuple[str, str, str]] = queue.Queue()

    def Export(  # noqa: N802 (generated gRPC method name)
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.put((span.name, span.trace_id.hex(), span.parent_span_id.hex()))
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, name: str, timeout: float = 20) -> tuple[str, str, str]:
        while True:
            span = self.spans.get(timeout=timeout)
            if span[0] == name:
                return span


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    receiving = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        receiving, server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiving, port
    server.stop(None)


class TestTracing:
    def test_call_is_traced_and_logged_with_its_trace_id(
        self,
        receiver: tuple[Receiver, int],  # before `launch`: stopped after the server
        launch: Callable[..., ServerProcess],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A call with a traceparent gets a server span in that trace; its log line says so."""
        receiving, port = receiver
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s
        server = launch("--otlp-endpoint", f"http://127.0.0.1:{port}")
        with grpc.insecure_channel(server.address) as channel:
            pb_grpc.TermEvaluatorStub(channel).Evaluate(
                evaluate_request(CLEAN_PACKAGE),
                timeout=CALL_TIMEOUT,
                metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),),
            )
        _, trace_id, parent_id = receiving.wait_for(EVALUATE_SPAN)
        assert (TRACE_ID, PARENT_ID) == (trace_id, parent_id)
        record = server.wait_for(lambda r: r.get("event") == "evaluation", 10)
        assert TRACE_ID == record["trace_id"]
        assert 16 == len(record["span_id"])

    def test_standard_variable_turns_tracing_on(
        self,
        receiver: tuple[Receiver, int],  # before `launch`: stopped after the server
        launch: Callable[..., ServerProcess],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """OTEL_EXPORTER_OTLP_ENDPOINT alone turns tracing on; a call without a traceparent
        starts a trace of its own."""
        receiving, port = receiver
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        server = launch()
        with grpc.insecure_channel(server.address) as channel:
            pb_grpc.TermEvaluatorStub(channel).Evaluate(
                evaluate_request(CLEAN_PACKAGE), timeout=CALL_TIMEOUT
            )
        _, trace_id, parent_id = receiving.wait_for(EVALUATE_SPAN)
        assert "" == parent_id
        record = server.wait_for(lambda r: r.get("event") == "evaluation", 10)
        assert trace_id == record["trace_id"]

    def test_off_unless_configured(self, launch: Callable[..., ServerProcess]) -> None:
        """Without an endpoint, log lines carry no trace id."""
        server = launch()
        with grpc.insecure_channel(server.address) as channel:
            pb_grpc.TermEvaluatorStub(channel).Evaluate(
                evaluate_request(CLEAN_PACKAGE), timeout=CALL_TIMEOUT
            )
        record = server.wait_for(lambda r: r.get("event") == "evaluation", 10)
        assert "trace_id" not in record
