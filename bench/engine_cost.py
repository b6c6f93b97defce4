"""Engine-level cost of one evaluation on the default ruleset, against hand-written Python.

    python bench/engine_cost.py [--runs 10000]

Measures, interleaved in one process so machine noise hits every row alike:

- evaluate   `Evaluator.evaluate`: projection to facts, durable_rules, violations, decision
- engine     `RuleEngine.match` alone on already projected facts
- floor      `RuleEngine.match` on a ruleset holding only the canary rule
- reference  termdesk's plain-Python interpreter of the checked rules over the projected facts
- plain      the same rules written by hand as Python (`plain_rules.violations`) over the
             package as plain JSON data: no interpreter, no engine, no projection (baseline)
- trades     `TradeAdvisor.advise`: candidate trades, their verification in the engine, the
             counter-proposal and giveaways (nothing to do for a clean package)
- in-engine  the part of `trades` spent inside `RuleEngine.match` (durable_rules sessions,
             facts to JSON, results read back), and how many sessions: what a faster
             search in Python would leave

for a clean 10-term package (no violation), a first draft breaking 5 policies and a
10-term package with 27 violations.
Before timing, asserts that plain, the engine and the reference find the same violations.
Prints median and p99 in microseconds and each row's ratio to the baseline (`plain`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import plain_rules

from termdesk import facts
from termdesk.catalog import find_ruleset
from termdesk.engine import RuleEngine
from termdesk.evaluator import Evaluator
from termdesk.jsonview import package_json
from termdesk.model import TermPackage
from termdesk.ruleset import reference
from termdesk.ruleset.compiler import CANARY
from termdesk.trades import TradeAdvisor
from termdesk.vocabulary import check_package, default_vocabulary

CLEAN_10 = {
    "deal_id": "bench-clean",
    "context": {"partner_type": "reseller", "strategic_importance": "medium"},
    "terms": [
        {
            "type": "exclusivity",
            "fields": {
                "segments": ["mid-market healthcare"],
                "geographies": ["UK"],
                "duration_months": 6,
                "min_verified_activations": 25,
                "commitment_period_months": 6,
                "reversion": "non_exclusive",
                "audit_rights": True,
                "mutual": True,
            },
        },
        {"type": "confidentiality", "fields": {"mutual": True, "years": 3}},
        {"type": "payment_terms", "fields": {"net_days": 30, "verification": "invoice_collection"}},
        {"type": "revenue_share", "fields": {"rate": 0.2, "basis": "gross"}},
        {"type": "review_schedule", "fields": {"quarterly_business_review": True}},
        {
            "type": "partner_commitments",
            "fields": {"activation_plan": True, "named_owners": True, "weekly_reporting_days": 60},
        },
        {"type": "mfn", "fields": {"segments": ["smb"], "excludes_custom_enterprise": True}},
        {
            "type": "deal_registration",
            "fields": {"validity_days": 90, "max_renewals": 1, "evidence_required": True},
        },
        {
            "type": "territory",
            "fields": {
                "objective_criteria": ["employee_count"],
                "conflict_rule": "first_registered_with_activity",
            },
        },
        {"type": "marketing_approval", "fields": {"response_business_days": 3}},
    ],
}


def _five_violations() -> dict[str, Any]:
    """CLEAN_10 as a partner's first draft: five policies broken, the usual kind of package."""
    package: dict[str, Any] = json.loads(json.dumps(CLEAN_10))
    package["deal_id"] = "bench-violating-5"
    exclusivity, _, payment, revenue_share = package["terms"][:4]
    exclusivity["fields"].update({"duration_months": 24, "reversion": "none"})
    payment["fields"] = {"net_days": 15}
    revenue_share["fields"]["rate"] = 0.35
    package["terms"].append({"type": "termination", "fields": {"mutual": False}})
    return package


VIOLATING_10 = {
    "deal_id": "bench-violating",
    "context": {"partner_type": "strategic_alliance", "strategic_importance": "high"},
    "terms": [
        {"type": "exclusivity", "fields": {"segments": ["a", "b", "c"], "mutual": False}},
        {"type": "payment_terms", "fields": {"net_days": 5}},
        {"type": "revenue_share", "fields": {"rate": 0.45, "basis": "net", "renewal_rate": 0.5}},
        {"type": "mfn", "fields": {}},
        {"type": "termination", "fields": {"mutual": False, "cure_period_days": 10}},
        {"type": "data_sharing", "fields": {"includes_cohort_retention": True}},
        {"type": "referral_fee", "fields": {"acceptance_window_days": 30}},
        {"type": "marketing_approval", "fields": {"deemed_approved": True}},
        {"type": "performance_guarantee", "fields": {}},
        {"type": "indemnity", "fields": {"mutual": False}},
    ],
}

VIOLATING_5 = _five_violations()


def timed(function: Callable[[], object], samples: list[float]) -> None:
    start = time.perf_counter_ns()
    function()
    samples.append((time.perf_counter_ns() - start) / 1000)


class EngineClock:
    """Time spent in `RuleEngine.match` while `running`, per outer call."""

    def __init__(self) -> None:
        self.running = False
        self.spent_us = 0.0
        self.sessions = 0
        original = RuleEngine.match

        def match(engine: RuleEngine, projected: Any) -> Any:
            if not self.running:
                return original(engine, projected)
            start = time.perf_counter_ns()
            try:
                return original(engine, projected)
            finally:
                self.spent_us += (time.perf_counter_ns() - start) / 1000
                self.sessions += 1

        RuleEngine.match = match  # type: ignore[method-assign,assignment]

    def timed(self, function: Callable[[], object], samples: list[float]) -> None:
        self.running, self.spent_us, self.sessions = True, 0.0, 0
        try:
            function()
        finally:
            self.running = False
        samples.append(self.spent_us)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    runs = parser.parse_args().runs

    ruleset = find_ruleset("partner-alliance")
    evaluator = Evaluator(ruleset)
    engine = RuleEngine("bench-engine", evaluator.compiled.engine_rules)
    floor = RuleEngine("bench-floor", {CANARY: evaluator.compiled.engine_rules[CANARY]})
    vocabulary = default_vocabulary()
    advisor = TradeAdvisor(evaluator, vocabulary)
    clock = EngineClock()
    cases: dict[str, TermPackage] = {
        "clean 10 terms": check_package(CLEAN_10, vocabulary),
        "violating 5 of 11 terms": check_package(VIOLATING_5, vocabulary),
        "violating 10 terms": check_package(VIOLATING_10, vocabulary),
    }
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, Python {platform.python_version()}"
    )
    print(
        f"ruleset: {ruleset.name} ({len(ruleset.rules)} rules, "
        f"{len(evaluator.compiled.engine_rules)} engine rules), {runs} runs per row\n"
    )
    for name, package in cases.items():
        evaluation = evaluator.evaluate(package)
        projected = facts.project(package, evaluator.compiled)
        engine_found = {
            (evaluator.compiled.rule_of_clause[r], t) for r, t in engine.match(projected)
        }
        assert engine_found == reference.violations(ruleset, projected), "engine != reference"
        plain_package = package_json(package)  # the plain row's input, built once
        assert plain_rules.violations(plain_package, ruleset.parameters) == {
            (ruleset.rules[r].id, t) for r, t in evaluator.matches(package)
        }, "plain != engine"
        calls: dict[str, Callable[[], object]] = {
            "evaluate": functools.partial(evaluator.evaluate, package),
            "engine": functools.partial(engine.match, projected),
            "floor": functools.partial(floor.match, projected),
            "reference": functools.partial(reference.violations, ruleset, projected),
            "plain": functools.partial(plain_rules.violations, plain_package, ruleset.parameters),
            # Trades, counter-proposal and giveaways of the evaluated package (none if clean).
            "trades": functools.partial(advisor.advise, package, evaluator.matches(package)),
        }
        rows: dict[str, list[float]] = {row: [] for row in [*calls, "in-engine"]}
        for _ in range(runs):  # interleaved: each row sees the same noise
            for row, call in calls.items():
                timed(call, rows[row])
            clock.timed(calls["trades"], rows["in-engine"])
        base, _ = summary(rows["plain"])
        print(
            f"{name}: {evaluation.decision.value}, {len(evaluation.violations)} violations, "
            f"{len(projected)} facts"
        )
        print(f"  {'row':<10} {'median us':>10} {'p99 us':>10} {'x plain':>12}")
        for row, samples in rows.items():
            median, p99 = summary(samples)
            print(f"  {row:<10} {median:>10.1f} {p99:>10.1f} {median / base:>11.1f}x")
        print(f"  trades ran {clock.sessions} engine sessions")
        print()
    for closable in (evaluator, engine, floor):
        closable.close()


if __name__ == "__main__":
    main()
