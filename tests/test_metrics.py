"""Tests of the Prometheus endpoint as an operator meets it: `termdesk serve --metrics-port 0`
in a subprocess, calls over real gRPC, /metrics scraped over HTTP and parsed."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

import test_server
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from test_server import (
    CALL_TIMEOUT,
    CLEAN_PACKAGE,
    CONFIDENTIALITY,
    NET_15,
    ServerProcess,
    batch_request,
    evaluate_request,
    term_package,
)

EVALUATE = {"grpc_service": "termdesk.v1.TermEvaluator", "grpc_method": "Evaluate"}
RULESET = {"ruleset": "partner-alliance"}
NET_15_PACKAGE = {"deal_id": "metrics-net15", "terms": [CONFIDENTIALITY, NET_15]}
TYPO_PACKAGE = {"deal_id": "typo", "terms": [{"type": "exclusivity", "fields": {"x": 1}}]}

# Short-lived servers for one test, stopped after it.
launch = test_server.launch

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_port(server: ServerProcess) -> int:
    record = server.wait_for(lambda r: r.get("event") == "metrics listening", 10)
    return int(record["port"])


def scrape(port: int) -> Samples:
    """Every sample of /metrics by (name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it is not there (a counter not yet incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path_factory.mktemp("metrics"), "--metrics-port", "0")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stub(metered: ServerProcess) -> Iterator[pb_grpc.TermEvaluatorStub]:
    with grpc.insecure_channel(metered.address) as channel:
        yield pb_grpc.TermEvaluatorStub(channel)


class TestMetrics:
    def test_counters_move_after_an_evaluation(
        self, metered: ServerProcess, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """One evaluation counts its call, latency, decision, violation and engine session."""
        port = metrics_port(metered)
        before = scrape(port)
        stub.Evaluate(evaluate_request(NET_15_PACKAGE), timeout=CALL_TIMEOUT)
        after = scrape(port)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert 1 == moved("grpc_server_handled_total", **EVALUATE, grpc_code="OK")
        assert 1 == moved("grpc_server_handling_seconds_count", **EVALUATE)
        assert 0 < moved("grpc_server_handling_seconds_sum", **EVALUATE)
        assert 1 == moved("termdesk_decisions_total", **RULESET, decision="NEEDS_APPROVAL")
        assert 1 == moved(
            "termdesk_violations_total",
            **RULESET,
            rule_id="payment.fast-payment-trade",
            severity="REVIEW",
        )
        assert 1 <= moved("termdesk_engine_sessions_total")

    def test_failed_call_is_counted_by_status(
        self, metered: ServerProcess, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """A package that does not fit the vocabulary counts as INVALID_ARGUMENT."""
        port = metrics_port(metered)
        before = scrape(port)
        with pytest.raises(grpc.RpcError):
            stub.Evaluate(evaluate_request(TYPO_PACKAGE), timeout=CALL_TIMEOUT)
        after = scrape(port)
        labels = {**EVALUATE, "grpc_code": "INVALID_ARGUMENT"}
        assert 1 == value(after, "grpc_server_handled_total", **labels) - value(
            before, "grpc_server_handled_total", **labels
        )

    def test_batch_counts_each_decision(
        self, metered: ServerProcess, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """A batch of three clean packages counts three APPROVE decisions."""
        port = metrics_port(metered)
        before = scrape(port)
        packages = [term_package(CLEAN_PACKAGE)] * 3
        stub.EvaluateBatch(batch_request(packages), timeout=CALL_TIMEOUT)
        after = scrape(port)
        labels = {**RULESET, "decision": "APPROVE"}
        assert 3 == value(after, "termdesk_decisions_total", **labels) - value(
            before, "termdesk_decisions_total", **labels
        )

    def test_series_exist_before_any_call(self, metered: ServerProcess) -> None:
        """Decisions and trades start at 0 and the active ruleset version is shown."""
        samples = scrape(metrics_port(metered))
        assert 1 == value(samples, "termdesk_active_ruleset_version", **RULESET)
        for decision in ("APPROVE", "NEEDS_APPROVAL", "REJECT"):
            key = ("termdesk_decisions_total", frozenset({**RULESET, "decision": decision}.items()))
            assert key in samples
        for name in ("termdesk_trades_offered_total", "termdesk_trades_verified_total"):
            assert (name, frozenset(RULESET.items())) in samples

    def test_workers_share_one_endpoint(self, launch: Callable[..., ServerProcess]) -> None:
        """With --workers 2, /metrics adds up the calls every process answered."""
        server = launch("--workers", "2", "--metrics-port", "0")
        server.wait_for(lambda r: r.get("event") == "listening" and r["pid"] != server.pid, 30)
        calls = 12
        for _ in range(calls):
            # A channel of its own (no shared subchannel): a new connection each time, which
            # the kernel gives to either process.
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(server.address, options=options) as channel:
                pb_grpc.TermEvaluatorStub(channel).Evaluate(
                    evaluate_request(CLEAN_PACKAGE), timeout=CALL_TIMEOUT
                )
        samples = scrape(metrics_port(server))
        assert calls == value(samples, "grpc_server_handled_total", **EVALUATE, grpc_code="OK")
        assert calls == value(samples, "termdesk_decisions_total", **RULESET, decision="APPROVE")

    def test_off_unless_asked(self, launch: Callable[..., ServerProcess]) -> None:
        """Without --metrics-port no metrics endpoint is started."""
        server = launch()
        assert [] == server.records("metrics listening")
