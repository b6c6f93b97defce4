"""Suggested trades through the public contract: each verified trade, applied here as the
contract documents, clears its rule and adds no BLOCK or REVIEW; counter-proposals hold.

The server runs in process on a real socket; trades are applied by `apply_trade` below,
written from the proto's documentation, not with termdesk's own code.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings

from termdesk.api.server import RunningServer, ServerConfig, start
from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.evaluator import Evaluator
from termdesk.model import Severity
from termdesk.trades import TradeAdvisor, apply_changes
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk.vocabulary import check_package, default_vocabulary
from test_differential import PACKAGES, SYNTHETIC

JSON = dict[str, Any]
REPO = Path(__file__).resolve().parent.parent
RULESET: JSON = yaml.safe_load(
    (REPO / "rulesets" / "partner-alliance" / "ruleset.yaml").read_text(encoding="utf-8")
)
CASES: list[JSON] = RULESET["tests"]
EXAMPLES = REPO / "rulesets" / "partner-alliance" / "examples"
HEAVY = (pb.SEVERITY_BLOCK, pb.SEVERITY_REVIEW)
TIMEOUT = 30


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.TermEvaluatorStub]:
    running: RunningServer = start(ServerConfig(host="127.0.0.1", port=0))
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.TermEvaluatorStub(channel)
    running.stop(grace=1)


def evaluate(stub: pb_grpc.TermEvaluatorStub, package: JSON, **options: Any) -> pb.EvaluateResponse:
    request = pb.EvaluateRequest(**options)
    json_format.ParseDict(package, request.package)
    return stub.Evaluate(request, timeout=TIMEOUT)


def package_json(message: pb.TermPackage) -> JSON:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def apply_trade(package: JSON, trade: pb.Trade) -> tuple[JSON, dict[int, int]]:
    """The contract: field changes first, then removals, then added terms at the end;
    term indices refer to the package as sent. Returns the new index of each kept term."""
    changed = copy.deepcopy(package)
    terms: list[JSON] = changed.setdefault("terms", [])
    removed: set[int] = set()
    for change in trade.changes:
        if change.op == pb.Change.OP_SET_FIELD:
            value = json_format.MessageToDict(change.value)
            terms[change.term_index].setdefault("fields", {})[change.field] = value
        elif change.op == pb.Change.OP_REMOVE_FIELD:
            terms[change.term_index].get("fields", {}).pop(change.field, None)
    for change in trade.changes:
        if change.op == pb.Change.OP_REMOVE_TERM:
            removed.add(change.term_index)
    kept = [i for i in range(len(terms)) if i not in removed]
    changed["terms"] = [terms[i] for i in kept]
    for change in trade.changes:
        if change.op == pb.Change.OP_ADD_TERM:
            changed["terms"].append(json_format.MessageToDict(change.term))
    return changed, {old: new for new, old in enumerate(kept)}


def heavy_keys(response: pb.EvaluateResponse) -> set[tuple[str, int]]:
    return {(v.rule_id, v.term_index) for v in response.violations if v.severity in HEAVY}


def assert_trade_holds(
    stub: pb_grpc.TermEvaluatorStub, package: JSON, before: pb.EvaluateResponse, trade: pb.Trade
) -> None:
    changed, index_map = apply_trade(package, trade)
    after = evaluate(stub, changed, skip_trades=True)
    target = index_map.get(trade.term_index) if trade.term_index >= 0 else -1
    fired = {(v.rule_id, v.term_index) for v in after.violations}
    assert (trade.rule_id, target) not in fired, trade.summary
    moved = {
        (rule, index_map[term] if term >= 0 else -1)
        for rule, term in heavy_keys(before)
        if term < 0 or term in index_map
    }
    assert set() == heavy_keys(after) - moved, trade.summary


FAILING_CASES = [case for case in CASES if case["expect"].get("decision", "APPROVE") != "APPROVE"]


class TestVerifiedTrades:
    @pytest.mark.parametrize("case", FAILING_CASES, ids=[c["name"] for c in FAILING_CASES])
    def test_each_verified_trade_holds(self, stub: pb_grpc.TermEvaluatorStub, case: JSON) -> None:
        """Applied by the client, every verified trade clears its rule and adds no BLOCK/REVIEW."""
        response = evaluate(stub, case["package"])
        for trade in response.trades:
            if trade.verified:
                assert not trade.needs_input
                assert_trade_holds(stub, case["package"], response, trade)
            else:
                assert trade.needs_input, "an unverified trade is offered only to ask a person"

    def test_every_rule_with_a_machine_trade_gets_a_verified_one(
        self, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """Over the ruleset's own failing cases, every rule that can be repaired is."""
        covered = set()
        for case in FAILING_CASES:
            covered |= {t.rule_id for t in evaluate(stub, case["package"]).trades if t.verified}
        repairable = {
            rule["id"]
            for rule in RULESET["rules"]
            if any("manual" not in trade for trade in rule.get("trades", []))
        }
        broken = {
            rule_id for case in FAILING_CASES for rule_id in case["expect"].get("violations", [])
        }
        assert set() == (repairable & broken) - covered

    @pytest.mark.parametrize("case", FAILING_CASES, ids=[c["name"] for c in FAILING_CASES])
    def test_counter_proposal_has_no_clearable_block(
        self, stub: pb_grpc.TermEvaluatorStub, case: JSON
    ) -> None:
        """The counter-proposal evaluates as its outcome says, with no BLOCK a trade clears."""
        response = evaluate(stub, case["package"])
        if not response.HasField("counter_proposal"):
            assert not any(t.verified for t in response.trades if t.rule_id)
            return
        proposal = package_json(response.counter_proposal)
        again = evaluate(stub, proposal)
        outcome = response.counter_proposal_outcome
        assert outcome.decision == again.decision
        assert [v.rule_id for v in outcome.violations] == [v.rule_id for v in again.violations]
        clearable = {(t.rule_id, t.term_index) for t in again.trades if t.verified}
        blocks = {
            (v.rule_id, v.term_index) for v in again.violations if v.severity == pb.SEVERITY_BLOCK
        }
        assert set() == blocks & clearable
        assert len(heavy_keys(again)) <= len(heavy_keys(response))
        applied = [response.trades[i] for i in outcome.applied_trades]
        assert outcome.cost >= sum(trade.cost for trade in applied) > 0


class TestSeeds:
    def test_open_exclusivity_gets_a_counter_proposal_that_approves(
        self, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """Exclusivity with no limit, commitment or reversion: the counter-proposal fills them."""
        package = json.loads((EXAMPLES / "seed-open-exclusivity.json").read_text())
        response = evaluate(stub, package)
        assert pb.DECISION_REJECT == response.decision
        outcome = response.counter_proposal_outcome
        assert outcome.decision in (pb.DECISION_APPROVE, pb.DECISION_NEEDS_APPROVAL)
        assert not any(v.severity == pb.SEVERITY_BLOCK for v in outcome.violations)
        fields = package_json(response.counter_proposal)["terms"][0]["fields"]
        assert fields["duration_months"] <= 12
        assert fields["min_verified_activations"] >= 1
        assert fields["commitment_period_months"] <= fields["duration_months"]
        assert "non_exclusive" == fields["reversion"]

    def test_fast_payment_trades_read_as_a_negotiation(
        self, stub: pb_grpc.TermEvaluatorStub
    ) -> None:
        """Each compensation of net-15 is its own trade, in conditional language."""
        package = json.loads((EXAMPLES / "seed-net-15.json").read_text())
        trades = [
            t for t in evaluate(stub, package).trades if t.rule_id == "payment.fast-payment-trade"
        ]
        verified = [t.summary for t in trades if t.verified]
        assert (
            "If you need payment terms with net days 15 days, then we need verification set to "
            "invoice collection"
        ) in verified
        assert any("staged: yes" in summary for summary in verified)
        assert any(t.needs_input for t in trades), "the dispute cap must come from a person"
        assert [t.cost for t in trades if t.verified] == sorted(
            t.cost for t in trades if t.verified
        )

    def test_giveaways_only_when_not_approved(self, stub: pb_grpc.TermEvaluatorStub) -> None:
        """Giveaway terms absent from the package are offered, verified, with a rejection only."""
        rejected = evaluate(stub, json.loads((EXAMPLES / "seed-net-15.json").read_text()))
        offered = {t.changes[0].term.type for t in rejected.giveaways}
        assert {"co_marketing", "enablement"} == offered
        assert all(t.verified and t.source == pb.TRADE_SOURCE_GIVEAWAY for t in rejected.giveaways)
        approved = evaluate(stub, json.loads((EXAMPLES / "seed-net-15-verified.json").read_text()))
        assert pb.DECISION_APPROVE == approved.decision
        assert ([], [], False) == (
            list(approved.trades),
            list(approved.giveaways),
            approved.HasField("counter_proposal"),
        )

    def test_skip_trades(self, stub: pb_grpc.TermEvaluatorStub) -> None:
        """skip_trades answers the decision alone."""
        package = json.loads((EXAMPLES / "seed-open-exclusivity.json").read_text())
        response = evaluate(stub, package, skip_trades=True)
        assert pb.DECISION_REJECT == response.decision
        assert ([], False) == (list(response.trades), response.HasField("counter_proposal"))


class TestRevision:
    def test_new_unchanged_changed_and_resolved(self, stub: pb_grpc.TermEvaluatorStub) -> None:
        """Against the previous revision each violation says what moved."""
        previous = json.loads((EXAMPLES / "seed-open-exclusivity.json").read_text())
        current = copy.deepcopy(previous)
        exclusivity = current["terms"][0]["fields"]
        exclusivity.update({"duration_months": 12, "mutual": False, "min_verified_activations": 5})
        current["terms"].insert(0, {"type": "indemnity", "fields": {"mutual": True}})
        previous_message = pb.TermPackage()
        json_format.ParseDict(previous, previous_message)
        response = evaluate(
            stub, current, previous_package=previous_message, previous_decision_id="d-1"
        )
        statuses = {v.rule_id: v.revision for v in response.violations}
        assert pb.REVISION_STATUS_NEW == statuses["mutuality.exclusivity"]
        assert pb.REVISION_STATUS_UNCHANGED == statuses["exclusivity.automatic-reversion"]
        assert pb.REVISION_STATUS_CHANGED == statuses["exclusivity.performance-commitment"]
        assert ["exclusivity.time-limit"] == [v.rule_id for v in response.resolved_violations]

    def test_bad_previous_package_names_its_field(self, stub: pb_grpc.TermEvaluatorStub) -> None:
        """A previous package that does not fit the vocabulary is INVALID_ARGUMENT, by path."""
        previous = pb.TermPackage()
        json_format.ParseDict(
            {"deal_id": "p", "terms": [{"type": "exclusivity", "fields": {"duration_month": 3}}]},
            previous,
        )
        with pytest.raises(grpc.RpcError) as caught:
            evaluate(stub, {"deal_id": "p", "terms": []}, previous_package=previous)
        error = caught.value
        assert isinstance(error, grpc.Call)
        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert "previous_package.terms[0].fields.duration_month" in (error.details() or "")


# --- the same two facts over generated packages ---------------------------------------------


@pytest.fixture(scope="module", params=["partner-alliance", "synthetic"])
def advisor(request: pytest.FixtureRequest) -> Iterator[TradeAdvisor]:
    """The shipped ruleset, and the differential tests' synthetic one: every condition form,
    `matches` in `when` among them."""
    ruleset = find_ruleset(DEFAULT_RULESET) if request.param == "partner-alliance" else SYNTHETIC
    evaluator = Evaluator(ruleset)
    yield TradeAdvisor(evaluator, default_vocabulary())
    evaluator.close()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=PACKAGES)
def test_generated_packages(advisor: TradeAdvisor, raw: JSON) -> None:
    """Verified trades hold under a full evaluation; the counter-proposal is what it says."""
    evaluator = advisor.evaluator
    package = check_package(raw, default_vocabulary())
    matches = evaluator.matches(package)
    advice = advisor.advise(package, matches)
    heavy = {m for m in matches if evaluator.ruleset.rules[m[0]].severity is not Severity.WARN}
    rule_index = {rule.id: i for i, rule in enumerate(evaluator.ruleset.rules)}
    for trade in advice.trades:
        if not trade.verified:
            continue
        changed, index_map, _ = apply_changes(package, trade.changes)
        after = evaluator.matches(changed)
        target = index_map.get(trade.term_index) if trade.term_index >= 0 else -1
        assert (rule_index[trade.rule_id], target) not in after, trade.summary
        moved = {(r, index_map[t] if t >= 0 else -1) for r, t in heavy if t < 0 or t in index_map}
        new_heavy = {
            m for m in after - moved if evaluator.ruleset.rules[m[0]].severity is not Severity.WARN
        }
        assert set() == new_heavy, trade.summary
    proposal = advice.counter_proposal
    if proposal is not None:
        assert evaluator.evaluate(proposal.package) == proposal.evaluation
        again = advisor.advise(proposal.package, evaluator.matches(proposal.package))
        clearable = {(t.rule_id, t.term_index) for t in again.trades if t.verified}
        blocks = {
            (v.rule_id, v.term_index)
            for v in proposal.evaluation.violations
            if v.severity is Severity.BLOCK
        }
        assert set() == blocks & clearable
