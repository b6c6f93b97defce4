"""RulesetAdmin over real gRPC, against `termdesk serve` on SQLite and on a real
PostgreSQL database: publish, refusals, concurrency, rollback, impact, tokens and audit,
and a second replica picking up a publish under load.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from termdesk.api.admin import is_loopback
from termdesk.auth import hash_token
from termdesk.evaluator import Evaluator
from termdesk.ruleset.validator import validate_source
from termdesk.store import Store, open_store
from termdesk.v1 import admin_pb2 as apb
from termdesk.v1 import admin_pb2_grpc as apb_grpc
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk.vocabulary import check_package, default_vocabulary
from test_server import (
    CLEAN_EXCLUSIVITY,
    CLEAN_PACKAGE,
    CONFIDENTIALITY,
    RULESET_FILE,
    ServerProcess,
    environment_without_termdesk,
    evaluate_request,
)

CALL_TIMEOUT = 20.0
NAME = "partner-alliance"
SHIPPED = RULESET_FILE.read_text(encoding="utf-8")
OWNER, AUDITOR, EVALUATOR = "owner-token-0123456789", "auditor-token-0123", "eval-token-0123456"


def tightened(months: int = 6, *, keep_tests: bool = False) -> str:
    """The shipped ruleset with a shorter exclusivity limit; without its test cases (which
    assume 12 months) unless `keep_tests`."""
    source = SHIPPED.replace(
        "max_exclusivity_months: {value: 12,", f"max_exclusivity_months: {{value: {months},"
    )
    assert source != SHIPPED
    return source if keep_tests else source[: source.index("\ntests:")] + "\ntests: []\n"


def exclusivity_package(deal_id: str, months: int) -> dict[str, Any]:
    exclusivity = {
        **CLEAN_EXCLUSIVITY,
        "fields": {
            **CLEAN_EXCLUSIVITY["fields"],
            "duration_months": months,
            "commitment_period_months": months,
        },
    }
    return {"deal_id": deal_id, "terms": [exclusivity, CONFIDENTIALITY]}


Metadata = tuple[tuple[str, str | bytes], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


class Admin:
    """Stubs of one server, and calls with the policy owner's token."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(server.address)
        self.stub = apb_grpc.RulesetAdminStub(self.channel)
        self.evaluator = pb_grpc.TermEvaluatorStub(self.channel)

    def publish(
        self, source: str, expected: int | None = None, token: str = OWNER
    ) -> apb.PublishRulesetResponse:
        request = apb.PublishRulesetRequest(source=source, comment="test")
        if expected is not None:
            request.expected_version = expected
        return self.stub.PublishRuleset(request, metadata=bearer(token), timeout=CALL_TIMEOUT)

    def versions(self, token: str = OWNER) -> list[apb.RulesetVersion]:
        request = apb.ListRulesetVersionsRequest(name=NAME)
        return list(
            self.stub.ListRulesetVersions(
                request, metadata=bearer(token), timeout=CALL_TIMEOUT
            ).versions
        )

    def evaluate(self, package: dict[str, Any], version: int = 0) -> pb.EvaluateResponse:
        return self.evaluator.Evaluate(
            evaluate_request(package, ruleset_version=version), timeout=CALL_TIMEOUT
        )

    def close(self) -> None:
        self.channel.close()


def refusal(call: Callable[[], object], code: grpc.StatusCode) -> tuple[str, list[Any]]:
    """Runs a call that must fail with `code`; returns its message and status details."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert code == error.code(), error.details()
    status = rpc_status.from_call(error)
    return error.details() or "", list(status.details) if status else []


def validation_detail(details: list[Any]) -> apb.ValidateRulesetResponse:
    for detail in details:
        check = apb.ValidateRulesetResponse()
        if detail.Unpack(check):
            return check
    raise AssertionError("no ValidateRulesetResponse in the status details")


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(
        f"# role name hash\npolicy_owner ana {hash_token(OWNER)}\n"
        f"auditor audrey {hash_token(AUDITOR)}\nevaluator crm {hash_token(EVALUATOR)}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def start(tmp_path: Path, store_url: str, tokens_file: Path) -> Iterator[Callable[..., Admin]]:
    """Starts servers on this test's store (one backend per run); stops them afterwards."""
    started: list[Admin] = []

    def launch(*flags: str, env: dict[str, str] | None = None) -> Admin:
        server = ServerProcess(
            tmp_path,
            "--store",
            store_url,
            "--tokens-file",
            str(tokens_file),
            "--reload-interval",
            "0.2",
            *flags,
            env=env,
        )
        admin = Admin(server)
        started.append(admin)
        return admin

    yield launch
    for admin in started:
        admin.close()
        admin.server.stop()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


class TestPublish:
    def test_first_start_imports_the_shipped_ruleset_as_version_1(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        (version,) = admin.versions()
        assert (1, True, "termdesk-import") == (version.version, version.active, version.author)
        source = admin.stub.GetRuleset(
            apb.GetRulesetRequest(name=NAME), metadata=bearer(OWNER), timeout=CALL_TIMEOUT
        ).source
        assert SHIPPED == source

    def test_publish_then_evaluate_uses_the_new_version_without_restart(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        before = admin.evaluate(exclusivity_package("d1", 12))
        assert (1, pb.DECISION_APPROVE) == (before.ruleset.version, before.decision)
        published = admin.publish(tightened(), expected=1)
        assert (2, "ana", "test") == (
            published.version,
            published.ruleset.author,
            published.ruleset.comment,
        )
        after = admin.evaluate(exclusivity_package("d1", 12))
        assert (2, published.digest) == (after.ruleset.version, after.ruleset.digest)
        assert pb.DECISION_REJECT == after.decision
        assert "exclusivity.time-limit" in {v.rule_id for v in after.violations}
        pinned = admin.evaluate(exclusivity_package("d1", 12), version=1)
        assert (1, pb.DECISION_APPROVE) == (pinned.ruleset.version, pinned.decision)

    def test_a_broken_ruleset_is_refused_with_diagnostics(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        condition = "require: duration_months <= $max_exclusivity_months"
        line = SHIPPED[: SHIPPED.index(condition)].count("\n") + 1
        broken = SHIPPED.replace(condition, condition.replace("months <=", "month <="))
        message, details = refusal(lambda: admin.publish(broken), grpc.StatusCode.INVALID_ARGUMENT)
        assert "unknown_field" in message
        check = validation_detail(details)
        diagnostic = check.diagnostics[0]  # then the test cases naming the broken rule
        assert ("unknown_field", "exclusivity.time-limit", line) == (
            diagnostic.code,
            diagnostic.rule_id,
            diagnostic.line,
        )
        assert "duration_months" in diagnostic.help
        assert [1] == [v.version for v in admin.versions()]
        assert 1 == admin.evaluate(CLEAN_PACKAGE).ruleset.version

    def test_a_failing_ruleset_test_is_refused_and_nothing_changes(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        message, details = refusal(
            lambda: admin.publish(tightened(keep_tests=True)), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert "test case(s) fail" in message
        check = validation_detail(details)
        assert not check.ok
        assert check.tests
        assert all(not test.passed and test.failures for test in check.tests)
        assert [(1, True)] == [(v.version, v.active) for v in admin.versions()]
        assert 1 == admin.evaluate(exclusivity_package("d", 12)).ruleset.version

    def test_validate_stores_nothing(self, start: Callable[..., Admin]) -> None:
        admin = start()
        check = admin.stub.ValidateRuleset(
            apb.ValidateRulesetRequest(source=tightened(keep_tests=True)),
            metadata=bearer(AUDITOR),
            timeout=CALL_TIMEOUT,
        )
        assert (False, NAME) == (check.ok, check.name)
        assert 0 < sum(not test.passed for test in check.tests) < len(check.tests)
        assert [1] == [v.version for v in admin.versions()]

    def test_two_concurrent_publishes_with_the_same_expected_version_one_wins(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        barrier = threading.Barrier(2)
        outcomes: list[grpc.StatusCode | None] = []

        def publish(months: int) -> None:
            barrier.wait()
            try:
                admin.publish(tightened(months), expected=1)
                outcomes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                outcomes.append(error.code() if isinstance(error, grpc.Call) else None)

        threads = [threading.Thread(target=publish, args=(m,)) for m in (6, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {grpc.StatusCode.OK, grpc.StatusCode.ABORTED} == set(outcomes)
        assert [1, 2] == [v.version for v in admin.versions()]

    def test_publishing_over_an_unseen_version_is_aborted(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        admin.publish(tightened(6), expected=1)
        message, _ = refusal(
            lambda: admin.publish(tightened(9), expected=1), grpc.StatusCode.ABORTED
        )
        assert "at version 2, not 1" in message

    def test_rollback_and_roll_forward(self, start: Callable[..., Admin]) -> None:
        admin = start()
        admin.publish(tightened(), expected=1)
        rolled = admin.stub.ActivateRulesetVersion(
            apb.ActivateRulesetVersionRequest(name=NAME, version=1),
            metadata=bearer(OWNER),
            timeout=CALL_TIMEOUT,
        )
        assert (1, 2) == (rolled.ruleset.version, rolled.previous_version)
        assert [(1, True), (2, False)] == [(v.version, v.active) for v in admin.versions()]
        response = admin.evaluate(exclusivity_package("d", 12))
        assert (1, pb.DECISION_APPROVE) == (response.ruleset.version, response.decision)
        admin.stub.ActivateRulesetVersion(
            apb.ActivateRulesetVersionRequest(name=NAME, version=2),
            metadata=bearer(OWNER),
            timeout=CALL_TIMEOUT,
        )
        assert 2 == admin.evaluate(exclusivity_package("d", 12)).ruleset.version
        refusal(
            lambda: admin.stub.ActivateRulesetVersion(
                apb.ActivateRulesetVersionRequest(name=NAME, version=9),
                metadata=bearer(OWNER),
                timeout=CALL_TIMEOUT,
            ),
            grpc.StatusCode.NOT_FOUND,
        )

    def test_diff_names_the_changed_parameter(self, start: Callable[..., Admin]) -> None:
        admin = start()
        admin.publish(tightened(), expected=1)
        diff = admin.stub.DiffRulesetVersions(
            apb.DiffRulesetVersionsRequest(name=NAME, from_version=1, to_version=2),
            metadata=bearer(AUDITOR),
            timeout=CALL_TIMEOUT,
        )
        assert ([], []) == (list(diff.added_rule_ids), list(diff.removed_rule_ids))
        assert [("max_exclusivity_months", "12", "6")] == [
            (p.name, p.from_value, p.to_value) for p in diff.changed_parameters
        ]


class TestImpact:
    def test_a_tightened_threshold_reports_exactly_the_deals_that_change(
        self, start: Callable[..., Admin], store: Store
    ) -> None:
        admin = start()
        packages = [exclusivity_package(f"deal-{months}m", months) for months in (3, 6, 9, 12)]
        packages += [CLEAN_PACKAGE, exclusivity_package("deal-24m", 24)]
        for package in packages:
            admin.evaluate(package)
        report = admin.stub.AnalyzeImpact(
            apb.AnalyzeImpactRequest(source=tightened(6)),
            metadata=bearer(AUDITOR),
            timeout=CALL_TIMEOUT,
        )
        # The oracle: both versions evaluated here, in process, on the same packages.
        expected = _changed_deals(packages, SHIPPED, tightened(6))
        assert {"deal-9m", "deal-12m"} == set(expected)
        assert (len(packages), len(expected), 1) == (
            report.replayed,
            report.changed,
            report.active_version,
        )
        assert expected == {c.deal_id: (c.from_decision, c.to_decision) for c in report.changes}
        assert [(pb.DECISION_APPROVE, pb.DECISION_REJECT, 2)] == [
            (t.from_decision, t.to_decision, t.count) for t in report.transitions
        ]
        logged = store.decisions(NAME)
        assert {p["deal_id"] for p in packages} == {d.deal_id for d in logged}
        assert all(d.package["terms"] for d in logged)

    def test_limit_replays_only_the_newest_decisions(self, start: Callable[..., Admin]) -> None:
        admin = start()
        admin.evaluate(exclusivity_package("old-12m", 12))
        admin.evaluate(exclusivity_package("new-3m", 3))
        report = admin.stub.AnalyzeImpact(
            apb.AnalyzeImpactRequest(source=tightened(6), limit=1),
            metadata=bearer(OWNER),
            timeout=CALL_TIMEOUT,
        )
        assert (1, 0) == (report.replayed, report.changed)


def _changed_deals(
    packages: list[dict[str, Any]], before: str, after: str
) -> dict[str, tuple[int, int]]:
    vocabulary = default_vocabulary()
    evaluators = []
    for source in (before, after):
        ruleset = validate_source(source, "", vocabulary).ruleset
        assert ruleset is not None
        evaluators.append(Evaluator(ruleset))
    changed: dict[str, tuple[int, int]] = {}
    try:
        for raw in packages:
            package = check_package(json.loads(json.dumps(raw)), vocabulary)
            old, new = (e.evaluate(package).decision for e in evaluators)
            if old is not new:
                changed[package.deal_id] = (
                    pb.Decision.Value(f"DECISION_{old.value}"),
                    pb.Decision.Value(f"DECISION_{new.value}"),
                )
    finally:
        for evaluator in evaluators:
            evaluator.close()
    return changed


class TestAccess:
    def test_missing_or_wrong_token_is_unauthenticated_and_audited(
        self, start: Callable[..., Admin], store: Store
    ) -> None:
        admin = start()
        request = apb.ListRulesetsRequest()
        message, _ = refusal(
            lambda: admin.stub.ListRulesets(request, timeout=CALL_TIMEOUT),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert "Bearer" in message
        refusal(
            lambda: admin.stub.ListRulesets(
                request, metadata=bearer("not-a-token"), timeout=CALL_TIMEOUT
            ),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        records = store.audit_records()
        assert [("unauthenticated", "ListRulesets", "UNAUTHENTICATED")] * 2 == [
            (r.actor, r.action, r.outcome) for r in records
        ]
        assert not any("not-a-token" in line for line in admin.server.lines())

    def test_roles_are_enforced_and_audited(
        self, start: Callable[..., Admin], store: Store
    ) -> None:
        admin = start()
        refusal(lambda: admin.versions(token=EVALUATOR), grpc.StatusCode.PERMISSION_DENIED)
        message, _ = refusal(
            lambda: admin.publish(tightened(), token=AUDITOR), grpc.StatusCode.PERMISSION_DENIED
        )
        assert "policy_owner" in message
        assert [1] == [v.version for v in admin.versions(token=AUDITOR)]
        admin.publish(tightened(), expected=1)
        audited = [(r.actor, r.role, r.action, r.outcome) for r in reversed(store.audit_records())]
        assert [
            ("crm", "evaluator", "ListRulesetVersions", "PERMISSION_DENIED"),
            ("audrey", "auditor", "PublishRuleset", "PERMISSION_DENIED"),
            ("audrey", "auditor", "ListRulesetVersions", "OK"),
            ("ana", "policy_owner", "PublishRuleset", "OK"),
        ] == audited
        assert "published version 2" in store.audit_records()[0].detail
        for token in (OWNER, AUDITOR, EVALUATOR):
            assert not any(token in line for line in admin.server.lines())

    def test_bootstrap_admin_token_from_the_environment(self, start: Callable[..., Admin]) -> None:
        admin = start(env={"TERMDESK_ADMIN_TOKEN": "bootstrap-token-0123"})
        assert [1] == [v.version for v in admin.versions(token="bootstrap-token-0123")]

    def test_evaluate_needs_a_token_when_configured(self, start: Callable[..., Admin]) -> None:
        admin = start("--evaluate-auth", "token")
        refusal(lambda: admin.evaluate(CLEAN_PACKAGE), grpc.StatusCode.UNAUTHENTICATED)
        response = admin.evaluator.Evaluate(
            evaluate_request(CLEAN_PACKAGE), metadata=bearer(EVALUATOR), timeout=CALL_TIMEOUT
        )
        assert pb.DECISION_APPROVE == response.decision

    def test_evaluate_from_another_machine_needs_a_token_by_default(
        self, start: Callable[..., Admin]
    ) -> None:
        """Default `--evaluate-auth loopback`: open on loopback, a token from elsewhere."""
        admin = start("--host", "0.0.0.0")
        assert pb.DECISION_APPROVE == admin.evaluate(CLEAN_PACKAGE).decision  # 127.0.0.1
        with grpc.insecure_channel(f"{outward_address()}:{admin.server.port}") as channel:
            remote = pb_grpc.TermEvaluatorStub(channel)
            refusal(
                lambda: remote.Evaluate(evaluate_request(CLEAN_PACKAGE), timeout=CALL_TIMEOUT),
                grpc.StatusCode.UNAUTHENTICATED,
            )
            response = remote.Evaluate(
                evaluate_request(CLEAN_PACKAGE), metadata=bearer(EVALUATOR), timeout=CALL_TIMEOUT
            )
            assert pb.DECISION_APPROVE == response.decision


def outward_address() -> str:
    """This machine's address on its way out (not loopback): what another host would call."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 9))  # sends nothing: only picks a route
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "no non-loopback address on this machine"
    return address


class TestLoopbackPeers:
    @pytest.mark.parametrize(
        ("peer", "local"),
        [
            ("ipv4:127.0.0.1:5000", True),
            ("ipv6:[::1]:5000", True),
            ("ipv6:%5B::1%5D:5000", True),
            ("unix:/tmp/termdesk.sock", True),
            ("ipv4:192.0.2.2:5000", False),
            ("ipv6:[fd00::2]:5000", False),
            ("", False),
        ],
    )
    def test_is_loopback(self, peer: str, local: bool) -> None:
        """gRPC peer strings, URL-encoded or not, are local only on loopback or a socket."""
        assert local == is_loopback(peer)


class TestWithoutAdmin:
    def test_admin_is_off_without_a_token_and_says_so(self, tmp_path: Path) -> None:
        server = ServerProcess(tmp_path)
        try:
            off = server.wait_for(lambda r: r.get("event") == "admin service off", 5)
            assert "TERMDESK_ADMIN_TOKEN" in off["reason"]
            assert (tmp_path / "termdesk-data" / "termdesk.db").is_file()
            with grpc.insecure_channel(server.address) as channel:
                refusal(
                    lambda: apb_grpc.RulesetAdminStub(channel).ListRulesets(
                        apb.ListRulesetsRequest(), timeout=CALL_TIMEOUT
                    ),
                    grpc.StatusCode.UNIMPLEMENTED,
                )
        finally:
            server.stop()

    def test_rulesets_dir_without_a_store_is_read_only_from_files(self, tmp_path: Path) -> None:
        server = ServerProcess(
            tmp_path,
            "--rulesets",
            str(RULESET_FILE.parent.parent),
            env={"TERMDESK_ADMIN_TOKEN": "x"},
        )
        try:
            off = server.wait_for(lambda r: r.get("event") == "admin service off", 5)
            assert "read-only" in off["reason"]
            assert not (tmp_path / "termdesk-data").exists()
        finally:
            server.stop()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
class TestReplicas:
    def test_a_second_replica_picks_up_a_publish_under_load_with_no_failed_call(
        self, start: Callable[..., Admin]
    ) -> None:
        first = start()
        second = start()
        stop = threading.Event()
        seen: list[int] = []
        failures: list[str] = []

        def load() -> None:
            while not stop.is_set():
                try:
                    response = second.evaluate(exclusivity_package("load", 12))
                    seen.append(response.ruleset.version)
                except grpc.RpcError as error:
                    failures.append(str(error))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            first.publish(tightened(), expected=1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (not seen or seen[-1] != 2):
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert [] == failures
        assert 1 == seen[0]
        assert 2 == seen[-1]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
class TestCommandLine:
    """`termdesk publish / versions / activate / impact` against a running server."""

    def run(self, admin: Admin, *args: str, token: str = OWNER) -> subprocess.CompletedProcess[str]:
        env = environment_without_termdesk()
        env |= {"TERMDESK_ADDRESS": admin.server.address, "TERMDESK_TOKEN": token}
        return subprocess.run(
            [sys.executable, "-m", "termdesk.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_the_policy_owner_walkthrough(
        self, start: Callable[..., Admin], tmp_path: Path
    ) -> None:
        admin = start()
        draft = tmp_path / "ruleset.yaml"
        draft.write_text(tightened(6, keep_tests=True), encoding="utf-8")
        admin.evaluate(exclusivity_package("deal-12m", 12))
        admin.evaluate(exclusivity_package("deal-3m", 3))

        impact = self.run(admin, "impact", str(draft))
        assert 0 == impact.returncode, impact.stderr
        assert "2 logged decision(s) replayed" in impact.stdout
        assert "1 would change" in impact.stdout
        assert "deal-12m: APPROVE -> REJECT" in impact.stdout

        refused = self.run(admin, "publish", str(draft), "--comment", "six months")
        assert 1 == refused.returncode
        assert "INVALID_ARGUMENT" in refused.stderr
        assert "FAIL line" in refused.stderr

        draft.write_text(tightened(6), encoding="utf-8")
        published = self.run(
            admin, "publish", str(draft), "--comment", "six months", "--expected-version", "1"
        )
        assert 0 == published.returncode, published.stderr
        assert "published partner-alliance version 2" in published.stdout
        stale = self.run(admin, "publish", str(draft), "--expected-version", "1")
        assert 1 == stale.returncode
        assert "ABORTED" in stale.stderr

        versions = self.run(admin, "versions", NAME, token=AUDITOR)
        lines = versions.stdout.splitlines()
        assert 2 == len(lines)
        assert lines[1].startswith("*    2")
        assert ["ana", "six", "months"] == [lines[1].split()[4], *lines[1].split()[6:]]

        rolled = self.run(admin, "activate", NAME, "1")
        assert 0 == rolled.returncode, rolled.stderr
        assert "version 1 is active (was 2)" in rolled.stdout
        assert 1 == admin.evaluate(CLEAN_PACKAGE).ruleset.version

        denied = self.run(admin, "activate", NAME, "2", token=EVALUATOR)
        assert 1 == denied.returncode
        assert "PERMISSION_DENIED" in denied.stderr

    def test_token_prints_the_token_apart_from_its_tokens_file_line(
        self, start: Callable[..., Admin]
    ) -> None:
        admin = start()
        made = self.run(admin, "token", "auditor", "carol")
        token = made.stderr.split("(shown once, never stored): ")[1].strip()
        assert f"auditor carol {hash_token(token)}\n" == made.stdout
        assert token not in made.stdout


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class TestTls:
    def test_tls_and_mutual_tls(self, tmp_path: Path, certificate: tuple[Path, Path]) -> None:
        cert, key = certificate
        flags = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(cert))
        server = ServerProcess(tmp_path, *flags)
        try:
            anonymous = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
            with grpc.secure_channel(server.address, anonymous) as channel:
                refusal(
                    lambda: pb_grpc.TermEvaluatorStub(channel).Evaluate(
                        evaluate_request(CLEAN_PACKAGE), timeout=5
                    ),
                    grpc.StatusCode.UNAVAILABLE,
                )
            client = grpc.ssl_channel_credentials(
                root_certificates=cert.read_bytes(),
                private_key=key.read_bytes(),
                certificate_chain=cert.read_bytes(),
            )
            with grpc.secure_channel(server.address, client) as channel:
                response = pb_grpc.TermEvaluatorStub(channel).Evaluate(
                    evaluate_request(CLEAN_PACKAGE), timeout=CALL_TIMEOUT
                )
            assert pb.DECISION_APPROVE == response.decision
        finally:
            server.stop()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
class TestMetrics:
    def test_the_active_version_gauge_follows_a_publish(self, start: Callable[..., Admin]) -> None:
        admin = start("--metrics-port", "0")
        port = admin.server.wait_for(lambda r: r.get("event") == "metrics listening", 5)["port"]

        def gauge() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                text: str = page.read().decode()
            [line] = [
                line
                for line in text.splitlines()
                if line.startswith('termdesk_active_ruleset_version{ruleset="partner-alliance"}')
            ]
            return line.split()[-1]

        assert "1.0" == gauge()
        admin.publish(tightened(), expected=1)
        assert "2.0" == gauge()
