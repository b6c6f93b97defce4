"""Tests of termdesk_client (clients/python) against a real `termdesk serve` subprocess.

Two servers run for the module: one on the defaults, and one with small limits (4 KiB
messages, 3 terms a package, 2 packages a batch). Retries are checked against an
in-process server that answers with chosen statuses and counts the attempts it saw.
"""

# House style (shared STYLE.md) writes `assert expected == actual`.

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk_client import (
    DeadlineExceededError,
    FieldViolation,
    InvalidPackageError,
    RequestTooLargeError,
    RulesetNotFoundError,
    ServerError,
    Term,
    TermdeskClient,
    TermdeskError,
    TermPackage,
    UnavailableError,
    error_from_batch,
    retry_service_config,
)

REPO = Path(__file__).resolve().parents[1]
CLIENT_DIR = REPO / "clients" / "python"
EXAMPLES = REPO / "rulesets" / "partner-alliance" / "examples"
CRM_EXAMPLE = CLIENT_DIR / "examples" / "crm_approval.py"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STARTUP_SECONDS = 30


def seed(name: str) -> dict[str, Any]:
    """A shipped example package, as a CRM would send it."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def misspelt_exclusivity() -> dict[str, Any]:
    """The open-exclusivity seed with `duration_month` for `duration_months`."""
    package = seed("seed-open-exclusivity")
    package["terms"][0]["fields"]["duration_month"] = 6
    return package


# -- the server under test


@dataclass
class Server:
    """A `termdesk serve` subprocess; `lines` collects its log as it is written."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_records(self, event: str) -> list[dict[str, Any]]:
        records = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                records.append(record)
        return records

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(*flags: str) -> Server:
    """Starts `termdesk serve` on a free port; returns once it logs `listening`."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "termdesk.cli", "serve"),
            *("--host", "127.0.0.1", "--port", "0", "--shutdown-grace", "1"),
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    lines: list[str] = []
    ports: queue.Queue[int | None] = queue.Queue()

    def drain() -> None:  # the server logs every decision: keep the pipe empty
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if '"listening"' in line:
                ports.put(int(json.loads(line)["port"]))
        ports.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        port = ports.get(timeout=STARTUP_SECONDS)
    except queue.Empty:
        port = None
    if port is None:
        Server(process, 0).stop()
        pytest.fail("termdesk serve did not start:\n" + "".join(lines))
    return Server(process, port, lines)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def small_server() -> Iterator[Server]:
    running = start_server("--max-message-bytes", "4096", "--max-terms", "3", "--max-batch", "2")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[TermdeskClient]:
    with TermdeskClient(server.target, timeout=10) as connected:
        yield connected


@pytest.fixture(scope="module")
def small_client(small_server: Server) -> Iterator[TermdeskClient]:
    with TermdeskClient(small_server.target, timeout=10) as connected:
        yield connected


def free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- Evaluate


class TestEvaluate:
    @pytest.mark.parametrize(
        ("name", "decision", "approvers"),
        [
            ("seed-net-15-verified", "APPROVE", ()),
            ("seed-exclusivity-uk-healthcare", "APPROVE", ()),
            ("seed-net-15", "NEEDS_APPROVAL", ("finance",)),
            ("seed-open-exclusivity", "REJECT", ()),
        ],
    )
    def test_seed_decisions(
        self, client: TermdeskClient, name: str, decision: str, approvers: tuple[str, ...]
    ) -> None:
        """The shipped seeds get their documented decision and required approvers."""
        evaluation = client.evaluate(seed(name))
        assert decision == evaluation.decision
        assert approvers == evaluation.required_approvers

    def test_trades_and_counter_proposal(self, client: TermdeskClient) -> None:
        """The open exclusivity seed comes back with verified trades and a proposal that holds."""
        evaluation = client.evaluate(seed("seed-open-exclusivity"))
        verified = [trade for trade in evaluation.trades if trade.verified]
        assert {"exclusivity.time-limit", "exclusivity.automatic-reversion"} <= {
            trade.rule_id for trade in verified
        }
        assert {0} == {trade.term_index for trade in verified}
        assert {"RULESET", "REPAIR"} >= {trade.source for trade in verified}
        outcome = evaluation.counter_proposal_outcome
        assert outcome is not None
        assert evaluation.counter_proposal is not None
        assert outcome.decision == client.evaluate(evaluation.counter_proposal).decision
        assert {"co_marketing", "enablement"} == {
            trade.changes[0].term.type for trade in evaluation.giveaways if trade.changes[0].term
        }
        assert () == client.evaluate(seed("seed-open-exclusivity"), skip_trades=True).trades

    def test_revision_against_the_previous_package(self, client: TermdeskClient) -> None:
        """With the previous revision, violations say what moved and fixed ones are listed."""
        previous = seed("seed-open-exclusivity")
        current = json.loads(json.dumps(previous))
        current["terms"][0]["fields"]["duration_months"] = 12
        evaluation = client.evaluate(current, previous=previous, previous_decision_id="d-0")
        revisions = {violation.rule_id: violation.revision for violation in evaluation.violations}
        assert "UNCHANGED" == revisions["exclusivity.automatic-reversion"]
        assert ("exclusivity.time-limit",) == tuple(
            violation.rule_id for violation in evaluation.resolved_violations
        )

    def test_violation_fields(self, client: TermdeskClient) -> None:
        """A violation carries rule, severity, approver, term, field, value and reasons."""
        (violation,) = client.evaluate(seed("seed-net-15")).violations
        assert "payment.fast-payment-trade" == violation.rule_id
        assert "REVIEW" == violation.severity
        assert "finance" == violation.approver
        assert "payment_terms" == violation.term_type
        assert 0 == violation.term_index
        assert "net_days" == violation.field
        assert isinstance(violation.actual, float)  # Struct numbers come back as floats
        assert 15 == violation.actual
        assert violation.message.startswith("net-15 payment is faster")
        assert violation.rationale.startswith("Paying before the money is collected")

    def test_reject_lists_every_blocking_violation(self, client: TermdeskClient) -> None:
        """An open-ended exclusivity breaks three BLOCK rules, each with a null actual."""
        evaluation = client.evaluate(seed("seed-open-exclusivity"))
        assert {
            "exclusivity.time-limit",
            "exclusivity.performance-commitment",
            "exclusivity.automatic-reversion",
        } == {violation.rule_id for violation in evaluation.violations}
        assert {"BLOCK"} == {violation.severity for violation in evaluation.violations}
        assert [None, None, None] == [violation.actual for violation in evaluation.violations]

    def test_missing_term_has_index_minus_one(self, client: TermdeskClient) -> None:
        """A violation about a term the package lacks has term_index -1."""
        package = seed("seed-net-15-verified")
        package["terms"] = [term for term in package["terms"] if term["type"] != "confidentiality"]
        evaluation = client.evaluate(package)
        assert [-1] == [
            violation.term_index
            for violation in evaluation.violations
            if violation.term_type == "confidentiality"
        ]

    def test_ruleset_and_decision_id(self, client: TermdeskClient) -> None:
        """The answer names the ruleset version and a fresh decision id per call."""
        first = client.evaluate(seed("seed-net-15"))
        second = client.evaluate(seed("seed-net-15"))
        assert "partner-alliance" == first.ruleset.name
        assert 1 == first.ruleset.version
        assert first.ruleset.digest.startswith("sha256:")
        assert UUID.fullmatch(first.decision_id)
        assert first.decision_id != second.decision_id

    def test_decision_id_is_in_the_server_log(self, client: TermdeskClient, server: Server) -> None:
        """The decision id a CRM stores finds the server's decision record."""
        evaluation = client.evaluate(seed("seed-net-15"))
        deadline = time.monotonic() + 5
        records: list[dict[str, Any]] = []
        while not records and time.monotonic() < deadline:
            records = [
                record
                for record in server.log_records("evaluation")
                if record["decision_id"] == evaluation.decision_id
            ]
            time.sleep(0.02)
        assert 1 == len(records)
        assert "seed-net-15" == records[0]["deal_id"]
        assert "NEEDS_APPROVAL" == records[0]["decision"]

    def test_model_and_mapping_agree(self, client: TermdeskClient) -> None:
        """A TermPackage model and the same package as a dict get the same answer."""
        model = TermPackage(
            deal_id="seed-net-15",
            context={"partner_type": "referral"},
            terms=(
                Term(type="payment_terms", fields={"net_days": 15, "verification": "none"}),
                Term(type="confidentiality", fields={"mutual": True, "years": 3}),
            ),
        )
        from_model = client.evaluate(model)
        from_mapping = client.evaluate(seed("seed-net-15"))
        assert from_mapping.decision == from_model.decision
        assert from_mapping.violations == from_model.violations

    def test_named_ruleset_and_version(self, client: TermdeskClient) -> None:
        """Naming the default ruleset and its version gives the same decision."""
        evaluation = client.evaluate(seed("seed-net-15"), ruleset="partner-alliance", version=1)
        assert "NEEDS_APPROVAL" == evaluation.decision

    def test_explain(self, client: TermdeskClient) -> None:
        """explain=True adds per-rule explanations with the values read; off by default."""
        assert () == client.evaluate(seed("seed-net-15")).explanations
        evaluation = client.evaluate(seed("seed-net-15"), explain=True)
        by_rule = {(item.rule_id, item.term_index): item for item in evaluation.explanations}
        fired = by_rule["payment.fast-payment-trade", 0]
        assert fired.violated
        assert fired.when_held
        assert not fired.require_held
        assert 15 == fired.values["net_days"]
        assert "none" == fired.values["verification"]
        absent = by_rule["exclusivity.time-limit", -1]
        assert not absent.violated
        assert "the package has no `exclusivity` term" == absent.note

    def test_models_are_frozen(self, client: TermdeskClient) -> None:
        """An evaluation cannot be changed after the fact (it is an audit record)."""
        evaluation = client.evaluate(seed("seed-net-15"))
        with pytest.raises(ValueError, match="frozen"):
            evaluation.decision = "APPROVE"


# -- EvaluateBatch


class TestBatch:
    def test_bad_item_fails_alone(self, client: TermdeskClient) -> None:
        """A bad package gets an error item; the others are answered, in order."""
        bad = seed("seed-net-15")
        bad["terms"][0]["fields"]["net_day"] = 15
        items = client.evaluate_batch(
            [seed("seed-net-15-verified"), bad, seed("seed-open-exclusivity")]
        )
        assert [0, 1, 2] == [item.index for item in items]
        assert ["seed-net-15-verified", "seed-net-15", "seed-open-exclusivity"] == [
            item.deal_id for item in items
        ]
        assert [True, False, True] == [item.ok for item in items]
        assert items[0].evaluation is not None
        assert "APPROVE" == items[0].evaluation.decision
        assert items[2].evaluation is not None
        assert "REJECT" == items[2].evaluation.decision
        error = items[1].error
        assert error is not None
        assert "INVALID_ARGUMENT" == error.code
        assert (
            FieldViolation(
                field="package.terms[0].fields.net_day",
                description="`payment_terms` terms have no field `net_day`",
                reason="unknown_field",
                help="did you mean `net_days`?",
            ),
        ) == error.field_violations

    def test_batch_error_as_exception(self, client: TermdeskClient) -> None:
        """error_from_batch gives the exception Evaluate raises for the same package."""
        (item,) = client.evaluate_batch([misspelt_exclusivity()])
        assert item.error is not None
        from_batch = error_from_batch(item.error)
        with pytest.raises(InvalidPackageError) as raised:
            client.evaluate(misspelt_exclusivity())
        assert isinstance(from_batch, InvalidPackageError)
        assert raised.value.field_violations == from_batch.field_violations

    def test_unknown_ruleset_fails_the_batch(self, client: TermdeskClient) -> None:
        """An unknown ruleset fails the whole call with RulesetNotFoundError."""
        with pytest.raises(RulesetNotFoundError):
            client.evaluate_batch([seed("seed-net-15")], ruleset="no-such-ruleset")

    def test_too_many_packages(self, small_client: TermdeskClient) -> None:
        """A batch over --max-batch is an invalid request naming `packages`."""
        with pytest.raises(InvalidPackageError) as raised:
            small_client.evaluate_batch([seed("seed-net-15")] * 3)
        assert "INVALID_REQUEST" == raised.value.reason
        assert ["packages"] == [violation.field for violation in raised.value.field_violations]
        assert "split the batch" == raised.value.field_violations[0].help

    def test_shape_error_names_the_position(self, client: TermdeskClient) -> None:
        """A mapping that is not a package fails locally, its path under packages[i]."""
        with pytest.raises(InvalidPackageError) as raised:
            client.evaluate_batch([seed("seed-net-15"), {"deal_id": "x", "terms": [{}]}])
        assert ["packages[1].terms[0].type"] == [
            violation.field for violation in raised.value.field_violations
        ]


# -- GetVocabulary


class TestVocabulary:
    def test_term_types_and_fields(self, client: TermdeskClient) -> None:
        """The vocabulary lists term types with typed, bounded, explained fields."""
        vocabulary = client.vocabulary()
        fields = {spec.name: spec for spec in vocabulary.term_type("exclusivity").fields}
        duration = fields["duration_months"]
        assert ("int", "months", 0.0, None) == (
            duration.type,
            duration.unit,
            duration.minimum,
            duration.maximum,
        )
        assert duration.meaning
        assert fields["segments"].items is not None
        assert "text" == fields["segments"].items.type
        assert ("non_exclusive", "terminate", "none") == fields["reversion"].values
        rate = {spec.name: spec for spec in vocabulary.term_type("revenue_share").fields}["rate"]
        assert (0.0, 1.0) == (rate.minimum, rate.maximum)

    def test_context_fields(self, client: TermdeskClient) -> None:
        """The deal context fields come with their allowed values."""
        context = {spec.name: spec for spec in client.vocabulary().context_fields}
        assert "enum" == context["partner_type"].type
        assert "referral" in context["partner_type"].values

    def test_unknown_term_type(self, client: TermdeskClient) -> None:
        """Asking the vocabulary for a term type it lacks is a KeyError."""
        with pytest.raises(KeyError):
            client.vocabulary().term_type("no_such_term")


# -- errors


class TestErrors:
    def test_invalid_package_carries_field_violations(self, client: TermdeskClient) -> None:
        """INVALID_ARGUMENT arrives as InvalidPackageError with the BadRequest violations."""
        with pytest.raises(InvalidPackageError) as raised:
            client.evaluate(misspelt_exclusivity())
        error = raised.value
        assert grpc.StatusCode.INVALID_ARGUMENT == error.code
        assert "INVALID_PACKAGE" == error.reason
        assert error.message.startswith("the package does not fit the vocabulary")
        assert (
            FieldViolation(
                field="package.terms[0].fields.duration_month",
                description="`exclusivity` terms have no field `duration_month`",
                reason="unknown_field",
                help="did you mean `duration_months`?",
            ),
        ) == error.field_violations

    def test_every_problem_is_a_violation(self, client: TermdeskClient) -> None:
        """Each problem of the package is its own field violation, with its path."""
        package = misspelt_exclusivity()
        package["terms"][1]["fields"]["years"] = "three"
        with pytest.raises(InvalidPackageError) as raised:
            client.evaluate(package)
        assert {
            "package.terms[0].fields.duration_month",
            "package.terms[1].fields.years",
        } == {violation.field for violation in raised.value.field_violations}

    def test_shape_error_fails_before_sending(self) -> None:
        """A mapping that is not a package is rejected locally: no server is needed."""
        offline = TermdeskClient(f"127.0.0.1:{free_port()}")
        with offline, pytest.raises(InvalidPackageError) as raised:
            offline.evaluate({"deal_id": "x", "terms": [{"fields": {}}], "extra": 1})
        assert {"package.terms[0].type", "package.extra"} == {
            violation.field for violation in raised.value.field_violations
        }

    def test_unknown_ruleset(self, client: TermdeskClient) -> None:
        """An unknown ruleset is RulesetNotFoundError naming the known ones."""
        with pytest.raises(RulesetNotFoundError) as raised:
            client.evaluate(seed("seed-net-15"), ruleset="no-such-ruleset")
        assert grpc.StatusCode.NOT_FOUND == raised.value.code
        assert "RULESET_NOT_FOUND" == raised.value.reason
        assert "partner-alliance" in raised.value.message

    def test_unknown_version(self, client: TermdeskClient) -> None:
        """A version the ruleset lacks is RulesetNotFoundError too."""
        with pytest.raises(RulesetNotFoundError, match="no version 99"):
            client.evaluate(seed("seed-net-15"), version=99)

    def test_request_too_large(self, small_client: TermdeskClient) -> None:
        """A request over --max-message-bytes is RequestTooLargeError."""
        package = seed("seed-net-15")
        package["deal_id"] = "x" * 10_000
        with pytest.raises(RequestTooLargeError) as raised:
            small_client.evaluate(package)
        assert grpc.StatusCode.RESOURCE_EXHAUSTED == raised.value.code

    def test_answer_larger_than_the_request_limit_arrives(
        self, small_client: TermdeskClient
    ) -> None:
        """The message limit bounds requests only: an explained answer over it arrives."""
        evaluation = small_client.evaluate(seed("seed-net-15"), explain=True)
        assert len(evaluation.explanations) > 30

    def test_too_many_terms(self, small_client: TermdeskClient) -> None:
        """A package over --max-terms names `package.terms` as too_many."""
        package = seed("seed-net-15")
        package["terms"] = package["terms"] * 2
        with pytest.raises(InvalidPackageError) as raised:
            small_client.evaluate(package)
        assert [("package.terms", "too_many")] == [
            (violation.field, violation.reason) for violation in raised.value.field_violations
        ]

    def test_deadline_exceeded(self, client: TermdeskClient) -> None:
        """A call whose timeout passes raises DeadlineExceededError."""
        # A batch that takes far longer than its 10 ms (a 1 us timeout on one package
        # was sometimes answered before the deadline took effect).
        with pytest.raises(DeadlineExceededError):
            client.evaluate_batch([seed("seed-open-exclusivity")] * 500, timeout=0.01)

    def test_message_and_code_in_str(self) -> None:
        """str() of an error names the status and the server's message."""
        error = RulesetNotFoundError(grpc.StatusCode.NOT_FOUND, "no ruleset `x`")
        assert "NOT_FOUND: no ruleset `x`" == str(error)
        assert isinstance(error, TermdeskError)


# -- retries


class FlakyServicer(pb_grpc.TermEvaluatorServicer):
    """Fails the first `failures` GetVocabulary calls with `code`, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def Evaluate(  # noqa: N802 (generated gRPC method name)
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "only GetVocabulary")

    def EvaluateBatch(  # noqa: N802 (generated gRPC method name)
        self, request: pb.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateBatchResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "only GetVocabulary")

    def GetVocabulary(  # noqa: N802 (generated gRPC method name)
        self, request: pb.GetVocabularyRequest, context: grpc.ServicerContext
    ) -> pb.GetVocabularyResponse:
        self.calls += 1
        if self.calls <= self.failures:
            context.abort(self.code, f"attempt {self.calls} fails")
        return pb.GetVocabularyResponse(term_types=[pb.TermTypeInfo(name="ok")])


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyServicer, str]]:
    """An in-process server failing twice with UNAVAILABLE; tests may change that."""
    servicer = FlakyServicer(2, grpc.StatusCode.UNAVAILABLE)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_TermEvaluatorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


class TestRetries:
    def test_service_config_retries_unavailable_only(self) -> None:
        """The channel's service config retries UNAVAILABLE, up to retries + 1 attempts."""
        with TermdeskClient("127.0.0.1:1", retries=3) as idle:
            options = dict(idle.options)
        assert 1 == options["grpc.enable_retries"]
        (method,) = json.loads(options["grpc.service_config"])["methodConfig"]
        assert [{"service": "termdesk.v1.TermEvaluator"}] == method["name"]
        assert ["UNAVAILABLE"] == method["retryPolicy"]["retryableStatusCodes"]
        assert 4 == method["retryPolicy"]["maxAttempts"]

    def test_attempts_capped_at_five(self) -> None:
        """gRPC allows at most 5 attempts; retries=0 means no retry policy at all."""
        (capped,) = retry_service_config(10)["methodConfig"]
        assert 5 == capped["retryPolicy"]["maxAttempts"]
        (off,) = retry_service_config(0)["methodConfig"]
        assert "retryPolicy" not in off
        with pytest.raises(ValueError, match="retries"):
            retry_service_config(-1)

    def test_retries_until_answered(self, flaky: tuple[FlakyServicer, str]) -> None:
        """Two UNAVAILABLE answers are retried and the third attempt succeeds."""
        servicer, target = flaky
        with TermdeskClient(target, retries=3) as retrying:
            assert "ok" == retrying.vocabulary().term_types[0].name
        assert 3 == servicer.calls

    def test_gives_up_after_the_attempts(self, flaky: tuple[FlakyServicer, str]) -> None:
        """UNAVAILABLE on every attempt raises UnavailableError after retries + 1 calls."""
        servicer, target = flaky
        servicer.failures = 100
        with TermdeskClient(target, retries=2) as retrying, pytest.raises(UnavailableError):
            retrying.vocabulary()
        assert 3 == servicer.calls

    def test_no_retries_when_off(self, flaky: tuple[FlakyServicer, str]) -> None:
        """retries=0 makes one attempt."""
        servicer, target = flaky
        with TermdeskClient(target, retries=0) as once, pytest.raises(UnavailableError):
            once.vocabulary()
        assert 1 == servicer.calls

    @pytest.mark.parametrize(
        ("code", "error"),
        [
            (grpc.StatusCode.INVALID_ARGUMENT, InvalidPackageError),
            (grpc.StatusCode.NOT_FOUND, RulesetNotFoundError),
            (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
            (grpc.StatusCode.INTERNAL, ServerError),
        ],
    )
    def test_never_retries_other_codes(
        self,
        flaky: tuple[FlakyServicer, str],
        code: grpc.StatusCode,
        error: type[TermdeskError],
    ) -> None:
        """Any status but UNAVAILABLE is raised after the first attempt."""
        servicer, target = flaky
        servicer.code = code
        with TermdeskClient(target, retries=3) as retrying, pytest.raises(error):
            retrying.vocabulary()
        assert 1 == servicer.calls

    def test_dead_port_is_unavailable(self) -> None:
        """Nothing listening raises UnavailableError once the attempts are spent."""
        offline = TermdeskClient(f"127.0.0.1:{free_port()}", retries=2)
        with offline, pytest.raises(UnavailableError) as raised:
            offline.vocabulary()
        assert grpc.StatusCode.UNAVAILABLE == raised.value.code

    def test_caller_options_replace_the_clients(self) -> None:
        """An option the caller passes replaces the client's own of the same key."""
        with TermdeskClient("127.0.0.1:1", options=[("grpc.enable_retries", 0)]) as idle:
            assert 0 == dict(idle.options)["grpc.enable_retries"]


class TestChannel:
    def test_credentials_make_a_tls_channel(self, server: Server) -> None:
        """With credentials the client speaks TLS, which the plaintext server refuses."""
        tls = TermdeskClient(server.target, credentials=grpc.ssl_channel_credentials(), retries=0)
        with tls, pytest.raises(UnavailableError):
            tls.vocabulary()

    def test_without_credentials_plaintext(self, client: TermdeskClient) -> None:
        """Without credentials the channel is plaintext and the server answers."""
        assert client.vocabulary().term_types


# -- the CRM example


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CRM_EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCrmExample:
    def test_prints_the_decision(self, server: Server) -> None:
        """On the default seed it prints decision, reasons, approvers and decision id."""
        run = run_example("--target", server.target)
        assert 0 == run.returncode, run.stderr
        lines = run.stdout.splitlines()
        assert "deal seed-net-15: NEEDS_APPROVAL (ruleset partner-alliance v1)" == lines[0]
        assert lines[1].startswith("  REVIEW payment.fast-payment-trade on payment_terms[0]")
        assert lines[2].startswith("    why: Paying before the money is collected")
        assert "    approver: finance" == lines[3]
        assert "required approvers: finance" == lines[4]
        assert re.fullmatch(
            r"decision id \(store on the opportunity for audit\): " + UUID.pattern, lines[5]
        )

    def test_bad_package_exits_3(self, server: Server, tmp_path: Path) -> None:
        """A package that does not fit prints each field violation and exits 3."""
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(misspelt_exclusivity()), encoding="utf-8")
        run = run_example(str(path), "--target", server.target)
        assert 3 == run.returncode, run.stdout + run.stderr
        assert (
            "  package.terms[0].fields.duration_month: `exclusivity` terms have no field "
            "`duration_month` (help: did you mean `duration_months`?)"
        ) in run.stderr.splitlines()

    def test_unknown_ruleset_exits_4(self, server: Server) -> None:
        """An unknown ruleset exits 4."""
        run = run_example("--target", server.target, "--ruleset", "no-such-ruleset")
        assert 4 == run.returncode, run.stdout + run.stderr
