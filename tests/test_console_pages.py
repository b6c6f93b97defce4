"""The console's /try and /decisions pages, over HTTP against a real `termdesk serve`.

One server serves the module: tests that add state (a second version, logged decisions)
do it in module fixtures that leave version 1 active, and use deal ids of their own.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from console_support import AUDITOR, EVALUATOR, NAME, OWNER, WebClient, start_console
from termdesk.console.evaluating import VersionEvaluators
from termdesk.evaluator import Evaluator
from termdesk.paths import shipped_rulesets_dir
from termdesk.registry import RulesetRegistry
from termdesk.ruleset.validator import validate_source
from termdesk.store import open_store, sqlite_url
from termdesk.store.base import DecisionRecord, StoredVersion, utc_now
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk.vocabulary import default_vocabulary
from test_admin import SHIPPED, exclusivity_package, tightened
from test_server import (
    CALL_TIMEOUT,
    CLEAN_PACKAGE,
    RULES_BY_ID,
    ServerProcess,
    batch_request,
    evaluate_request,
    term_package,
)

EXAMPLES = shipped_rulesets_dir() / NAME / "examples"
OPEN_EXCLUSIVITY: dict[str, Any] = json.loads(
    (EXAMPLES / "seed-open-exclusivity.json").read_text(encoding="utf-8")
)
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, Path]]:
    workdir = tmp_path_factory.mktemp("console")
    server, base = start_console(workdir)
    yield server, base, workdir
    server.stop()


@pytest.fixture(scope="module")
def grpc_stub(console: tuple[ServerProcess, str, Path]) -> Iterator[pb_grpc.TermEvaluatorStub]:
    with grpc.insecure_channel(console[0].address) as channel:
        yield pb_grpc.TermEvaluatorStub(channel)


def client(console: tuple[ServerProcess, str, Path], token: str) -> WebClient:
    web = WebClient(console[1])
    status, _ = web.sign_in(token)
    assert status == 200
    return web


@pytest.fixture
def owner(console: tuple[ServerProcess, str, Path]) -> WebClient:
    return client(console, OWNER)


def try_package(
    web: WebClient, package: dict[str, Any] | str, ruleset: str = f"{NAME}@1"
) -> tuple[int, str]:
    text = package if isinstance(package, str) else json.dumps(package)
    return web.post("/try", {"ruleset": ruleset, "package": text, "action": "evaluate"})


def decision_of(page: str) -> str:
    found = re.search(r'id="decision">([A-Z_]+)<', page)
    assert found, "no decision on the page"
    return found.group(1)


def pre(page: str, element_id: str) -> str:
    found = re.search(rf'<pre class="json" id="{element_id}">(.*?)</pre>', page, re.DOTALL)
    assert found, f"no <pre id={element_id}>"
    return html.unescape(found.group(1))


def textarea(page: str) -> str:
    found = re.search(r'<textarea id="package"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found
    return html.unescape(found.group(1))


def verified_summaries(page: str) -> list[str]:
    return [
        html.unescape(summary).strip()
        for summary in re.findall(r'<li class="trade is-verified">(.*?)<span', page, re.DOTALL)
    ]


class TestTry:
    def test_the_open_exclusivity_example_is_blocked_with_reasons_and_a_way_out(
        self, owner: WebClient, console: tuple[ServerProcess, str, Path]
    ) -> None:
        status, page = owner.get("/try")
        assert status == 200
        assert '<label for="package">Package JSON</label>' in page
        assert '<label for="package-file">' in page

        status, page = owner.post(
            "/try",
            {"ruleset": f"{NAME}@1", "example": f"{NAME}/seed-open-exclusivity", "action": "load"},
        )
        assert status == 200
        assert json.loads(textarea(page)) == OPEN_EXCLUSIVITY

        status, page = try_package(owner, textarea(page))
        assert status == 200
        assert decision_of(page) == "REJECT"
        assert '<span class="severity block">BLOCK</span>' in page
        rationale = RULES_BY_ID["exclusivity.time-limit"]["rationale"]
        assert rationale.strip() in html.unescape(page)
        summaries = verified_summaries(page)
        assert any(summary.startswith("If ") for summary in summaries), summaries
        assert "Copy counter-proposal JSON" in page
        assert "Giveaways" in page

        proposal = json.loads(pre(page, "counter-proposal-json"))
        assert proposal["deal_id"] == OPEN_EXCLUSIVITY["deal_id"]
        status, again = try_package(owner, proposal)
        assert status == 200
        assert decision_of(again) != "REJECT"

        store = open_store(sqlite_url(console[2] / "termdesk-data"))
        try:
            tried = [r for r in store.audit_records(50) if r.action == "TryPackage"]
        finally:
            store.close()
        assert any(
            (r.target, r.outcome, r.channel, r.actor) == (f"{NAME}@1", "REJECT", "console", "ana")
            for r in tried
        )
        assert all("mid-market healthcare" not in r.detail for r in tried)  # no package

    def test_an_older_version_is_evaluated_as_it_was(
        self, owner: WebClient, two_versions: None
    ) -> None:
        nine_months = exclusivity_package("nine-months", 9)
        _, first = try_package(owner, nine_months, f"{NAME}@1")
        _, second = try_package(owner, nine_months, f"{NAME}@2")
        assert (decision_of(first), decision_of(second)) == ("APPROVE", "REJECT")
        assert f"{NAME} version 2" in second
        assert "exclusivity.time-limit" in second
        status, page = owner.get(f"/try?ruleset={NAME}@2")
        assert status == 200
        assert f'<option value="{NAME}@2" selected>' in page

    def test_text_that_is_not_json_says_where(self, owner: WebClient) -> None:
        status, page = try_package(owner, '{"deal_id": "x",\n  "terms": [}')
        assert status == 400
        assert "The package is not JSON" in page
        assert "line 2, column 13" in page
        assert 'id="decision"' not in page

    def test_a_package_outside_the_vocabulary_lists_every_problem_with_its_field(
        self, owner: WebClient
    ) -> None:
        package = {
            "deal_id": "typos",
            "terms": [
                {"type": "exclusivty", "fields": {}},
                {"type": "exclusivity", "fields": {"duration_month": 6}},
            ],
        }
        status, page = try_package(owner, package)
        assert status == 400
        assert "does not fit the vocabulary" in page
        assert "<code>terms[0].type</code>" in page
        assert "<code>terms[1].fields.duration_month</code>" in page
        assert "did you mean `duration_months`?" in html.unescape(page)
        assert json.loads(textarea(page)) == package  # kept, to be fixed

    def test_an_unknown_ruleset_or_version_is_not_found(self, owner: WebClient) -> None:
        for target in (f"{NAME}@99", "no-such-ruleset@1", f"{NAME}@x"):
            status, page = try_package(owner, CLEAN_PACKAGE, target)
            assert status == 404, target
            assert "There is no ruleset version" in page

    def test_a_package_too_large_is_refused(self, owner: WebClient) -> None:
        package = {"deal_id": "big", "terms": [], "padding": "x" * (1024 * 1024)}
        status, page = try_package(owner, package)
        assert status == 413
        assert "the console takes packages of up to 1024 KB" in page

    def test_markup_in_a_package_is_shown_as_text(self, owner: WebClient) -> None:
        _, page = try_package(owner, {**OPEN_EXCLUSIVITY, "deal_id": SCRIPT})
        assert decision_of(page) == "REJECT"
        assert SCRIPT not in page
        assert html.escape(SCRIPT) in page

    def test_the_form_needs_its_csrf_token(self, owner: WebClient) -> None:
        status, _ = owner.post(
            "/try", {"package": json.dumps(CLEAN_PACKAGE), "action": "evaluate"}, csrf=False
        )
        assert status == 403

    def test_an_evaluator_may_try_but_not_read_the_decision_log(
        self, console: tuple[ServerProcess, str, Path]
    ) -> None:
        web = client(console, EVALUATOR)
        status, page = try_package(web, CLEAN_PACKAGE)
        assert (status, decision_of(page)) == (200, "APPROVE")
        assert 'href="/decisions"' not in page
        assert web.get("/decisions")[0] == 403
        assert web.get("/decisions/anything")[0] == 403
        auditor = client(console, AUDITOR)
        assert auditor.get("/decisions")[0] == 200


@pytest.fixture(scope="module")
def two_versions(console: tuple[ServerProcess, str, Path]) -> None:
    """Version 2 (exclusivity up to 6 months) published in the editor, then rolled back to
    version 1, which stays active for the other tests."""
    web = client(console, OWNER)
    status, _ = web.get(f"/rulesets/{NAME}/edit")
    assert status == 200
    form = {"source": tightened(), "base_version": "1", "comment": "six months"}
    status, page = web.post(f"/rulesets/{NAME}/edit", {**form, "action": "validate"})
    stamp = re.search(r'name="validated" value="([^"]+)"', page)
    assert status == 200
    assert stamp, page
    status, page = web.post(
        f"/rulesets/{NAME}/edit", {**form, "validated": stamp.group(1), "action": "publish"}
    )
    assert status == 200
    assert "Published version 2" in page
    status, page = web.post(f"/rulesets/{NAME}/versions/1/activate", {})
    assert status == 200
    assert "version 1 decides deals now" in page


@pytest.fixture(scope="module")
def logged(grpc_stub: pb_grpc.TermEvaluatorStub) -> dict[str, str]:
    """Decision id by deal id, of decisions made through gRPC Evaluate."""
    packages = [
        {**CLEAN_PACKAGE, "deal_id": "log-clean"},
        {**OPEN_EXCLUSIVITY, "deal_id": "log-open"},
        {**OPEN_EXCLUSIVITY, "deal_id": SCRIPT},
    ]
    return {
        package["deal_id"]: grpc_stub.Evaluate(
            evaluate_request(package), timeout=CALL_TIMEOUT
        ).decision_id
        for package in packages
    }


def listed(web: WebClient, query: str, expected: set[str]) -> tuple[str, list[str]]:
    """The page and the decision ids of a search; polls until `expected` are all listed
    (the log is written in the background)."""
    deadline = time.monotonic() + 10
    while True:
        status, page = web.get(f"/decisions{query}")
        assert status == 200
        ids = re.findall(r'<a href="/decisions/([0-9a-f-]{36})">', page)
        if expected <= set(ids) or time.monotonic() > deadline:
            return page, ids
        time.sleep(0.2)


class TestDecisions:
    def test_the_log_lists_grpc_decisions_newest_first(
        self, owner: WebClient, logged: dict[str, str]
    ) -> None:
        page, ids = listed(owner, "", set(logged.values()))
        assert set(logged.values()) <= set(ids)
        order = [ids.index(logged[deal]) for deal in ("log-clean", "log-open", SCRIPT)]
        assert order == sorted(order, reverse=True)
        assert '<label for="deal_id">Deal id</label>' in page
        assert 'method="get" action="/decisions"' in page

    def test_a_search_by_deal_id_finds_exactly_that_deal(
        self, owner: WebClient, logged: dict[str, str]
    ) -> None:
        page, ids = listed(owner, "?deal_id=log-open", {logged["log-open"]})
        assert ids == [logged["log-open"]]
        assert 'value="log-open"' in page

    def test_filters_by_decision_ruleset_and_version(
        self, owner: WebClient, logged: dict[str, str]
    ) -> None:
        _, rejected = listed(owner, "?decision=REJECT", {logged["log-open"]})
        assert logged["log-open"] in rejected
        assert logged["log-clean"] not in rejected
        _, approved = listed(
            owner, f"?decision=APPROVE&ruleset={NAME}&version=1", {logged["log-clean"]}
        )
        assert logged["log-clean"] in approved
        assert logged["log-open"] not in approved
        _, none = listed(owner, "?version=999", set())
        assert none == []
        assert owner.get("/decisions?decision=BLOCK")[0] == 400

    def test_a_decision_shows_its_package_and_recomputed_trades(
        self, owner: WebClient, logged: dict[str, str]
    ) -> None:
        listed(owner, "?deal_id=log-open", {logged["log-open"]})
        status, page = owner.get(f"/decisions/{logged['log-open']}")
        assert status == 200
        assert decision_of(page) == "REJECT"
        assert json.loads(pre(page, "package-json"))["deal_id"] == "log-open"
        assert "Recomputed" in page
        assert "exclusivity.time-limit" in page
        assert any(summary.startswith("If ") for summary in verified_summaries(page))
        assert json.loads(pre(page, "counter-proposal-json"))["deal_id"] == "log-open"

    def test_trades_are_not_recomputed_when_the_version_or_vocabulary_moved_on(
        self, owner: WebClient, console: tuple[ServerProcess, str, Path]
    ) -> None:
        shipped = stored(1).digest
        logged = {
            "other-digest": (
                "sha256:" + "0" * 64,
                {**OPEN_EXCLUSIVITY, "deal_id": "other-digest"},
            ),
            "retired-term": (
                shipped,
                {"deal_id": "retired-term", "terms": [{"type": "retired", "fields": {}}]},
            ),
        }
        store = open_store(sqlite_url(console[2] / "termdesk-data"))
        try:
            store.record_decisions(
                [
                    DecisionRecord(deal, deal, NAME, 1, ruleset_digest, "REJECT", [], package)
                    for deal, (ruleset_digest, package) in logged.items()
                ]
            )
        finally:
            store.close()
        status, page = owner.get("/decisions/other-digest")
        assert status == 200
        assert "as when this was decided" in page
        assert 'id="counter-proposal-json"' not in page
        status, page = owner.get("/decisions/retired-term")
        assert status == 200
        assert "no longer fits the vocabulary" in page
        assert "<code>terms[0].type</code>" in page

    def test_an_unknown_decision_is_not_found(self, owner: WebClient) -> None:
        status, page = owner.get("/decisions/no-such-decision")
        assert status == 404
        assert "no logged decision" in page

    def test_markup_in_a_logged_deal_id_is_shown_as_text(
        self, owner: WebClient, logged: dict[str, str]
    ) -> None:
        page, _ = listed(owner, "", {logged[SCRIPT]})
        assert SCRIPT not in page
        assert html.escape(SCRIPT) in page
        status, page = owner.get(f"/decisions/{logged[SCRIPT]}")
        assert status == 200
        assert SCRIPT not in page

    def test_a_long_search_is_capped_with_a_note(
        self, owner: WebClient, grpc_stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        bulk = term_package({**CLEAN_PACKAGE, "deal_id": "bulk"})
        response = grpc_stub.EvaluateBatch(
            batch_request([bulk] * 201, skip_trades=True), timeout=CALL_TIMEOUT * 3
        )
        assert len(response.results) == 201
        deadline = time.monotonic() + 10
        while True:
            page, ids = listed(owner, "?deal_id=bulk", set())
            if len(ids) == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(ids) == 200
        assert "there are more" in page


class TestVersionEvaluators:
    """The console's cache of compiled inactive versions: bounded, closing what it evicts."""

    def test_evicted_evaluators_are_closed_once_unused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        closed: list[int] = []
        close = Evaluator.close

        def closing(evaluator: Evaluator) -> None:
            closed.append(evaluator.ruleset.version)
            close(evaluator)

        monkeypatch.setattr(Evaluator, "close", closing)
        evaluators = VersionEvaluators(RulesetRegistry(NAME), default_vocabulary(), capacity=1)
        first, second = stored(1), stored(2, tightened())
        with evaluators.lease(first) as one:
            assert one.reference.version == 1
            with evaluators.lease(second) as two:
                assert two.reference.version == 2
                assert closed == []  # version 1 is evicted but still in use
            assert evaluators.cached() == [(NAME, 2)]
        assert closed == [1]
        with evaluators.lease(second) as again:
            assert again is two
        evaluators.close()
        assert closed == [1, 2]


def stored(version: int, source: str = SHIPPED) -> StoredVersion:
    ruleset = validate_source(source, "", default_vocabulary()).ruleset
    assert ruleset is not None
    return StoredVersion(NAME, version, source, ruleset.digest, "test", "", utc_now())
