"""Tests of termdesk.engine: the workarounds for durable_rules' two bugs, and its contract.

The bugs (shared/notes/durable-rules/README.md): a `$not` fact asserted after a partial
match is ignored, and `delete_state` can crash the process on a session that dispatched no
action. Whatever can crash runs in a subprocess, so a crash fails a test instead of
killing pytest.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

import durable_rules_engine
import pytest

from termdesk import engine as engine_module
from termdesk import facts
from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.engine import CANARY_RULE, RuleEngine
from termdesk.errors import EngineError
from termdesk.evaluator import Evaluator
from termdesk.model import Decision, TermPackage
from termdesk.ruleset import reference
from termdesk.ruleset.compiler import CANARY, DEAL_FACT_TYPE, compile_ruleset
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import validate_source
from termdesk.vocabulary import check_package, default_vocabulary

RawPackage = dict[str, Any]

SEED: RawPackage = {
    "deal_id": "seed-1",
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
    ],
}

# Terms that partner-alliance rules read through `$not` patterns, each beside a term that
# needs it: data_sharing needs data_handling; fast payment needs a revenue share at a
# reduced rate; a revenue share needs review points; every deal needs confidentiality.
NEEDED_TERMS: dict[str, RawPackage] = {
    "data_handling": {"type": "data_handling", "fields": {"standards": ["gdpr"]}},
    "confidentiality": {"type": "confidentiality", "fields": {"mutual": True, "years": 3}},
    "revenue_share": {"type": "revenue_share", "fields": {"rate": 0.1, "basis": "gross"}},
    "review_schedule": {"type": "review_schedule", "fields": {"quarterly_business_review": True}},
}
NEEDING_TERMS: tuple[RawPackage, ...] = (
    {"type": "data_sharing", "fields": {"purpose": "joint pipeline reviews"}},
    {"type": "payment_terms", "fields": {"net_days": 14, "verification": "none"}},
)
# The rule that fires when the needed term is missing.
RULE_WITHOUT: dict[str, str] = {
    "data_handling": "data-sharing.handling-terms",
    "confidentiality": "must-have.confidentiality",
    "revenue_share": "payment.fast-payment-trade",
    "review_schedule": "governance.review-points",
}

# negation_bug.py from the notes: a rule that does not start with the trigger fact, and a
# negated fact asserted after the positive one. The alias names matter (the bug depends on
# their hash), so they are those of the notes. Prints what fired as JSON.
RAW_NEGATION_SCRIPT = textwrap.dedent(
    """
    import json
    import durable_rules_engine as dre

    rules = {
        "excl_without_commitment": {"all": [
            {"x": {"type": "exclusivity"}},
            {"m_1$not": {"type": "performance_commitment"}},
        ]},
        "trigger_first": {"all": [
            {"z": {"type": "__eval__"}},
            {"x": {"type": "exclusivity"}},
            {"m_1$not": {"type": "performance_commitment"}},
        ]},
        "canary": {"all": [{"m": {"type": "__eval__"}}]},
    }
    handle = dre.create_ruleset("neg-demo", json.dumps(rules))
    batch = [
        {"type": "exclusivity", "id": "a", "sid": "s1"},
        {"type": "performance_commitment", "id": "b", "sid": "s1"},
        {"type": "__eval__", "id": "z", "sid": "s1"},
    ]
    _, state = dre.assert_facts(handle, json.dumps(batch))
    fired = []
    result = dre.start_action_for_state(handle, state)
    message = result[1] if result else None
    while message:
        fired += [name for name in json.loads(message) if name != "canary"]
        message = dre.complete_and_start_action(handle, state)
    dre.delete_state(handle, "s1")
    print(json.dumps(sorted(fired)))
    """
)

# Clean packages (no violation at all) evaluated many times through the adapter: without
# the canary rule, `delete_state` corrupts the heap and the process dies.
CLEAN_EVALUATIONS = 3000
ADAPTER_CLEAN_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    from termdesk.catalog import find_ruleset
    from termdesk.evaluator import Evaluator
    from termdesk.vocabulary import check_package, default_vocabulary

    raw_packages, count = json.loads(sys.argv[1]), int(sys.argv[2])
    packages = [check_package(raw, default_vocabulary()) for raw in raw_packages]
    evaluator = Evaluator(find_ruleset("partner-alliance"))
    for number in range(count):
        found = evaluator.matches(packages[number % len(packages)])
        if found:
            sys.exit(f"evaluation {number} found violations: {sorted(found)}")
    evaluator.close()
    print(count)
    """
)

# One package with a number json.dumps writes in exponent notation (5e-05).
ADAPTER_TINY_RATE_SCRIPT = textwrap.dedent(
    """
    from termdesk.catalog import find_ruleset
    from termdesk.evaluator import Evaluator
    from termdesk.vocabulary import check_package, default_vocabulary

    raw = {"deal_id": "tiny", "terms": [{"type": "revenue_share", "fields": {"rate": 0.00005}}]}
    evaluator = Evaluator(find_ruleset("partner-alliance"))
    print(evaluator.evaluate(check_package(raw, default_vocabulary())).decision.value)
    """
)

SMALL_RULESETS = {
    "deal-level": """
name: deal-level
rules:
  - id: long-agreements
    when: context.agreement_months > 12
    severity: WARN
    approver: deal_desk
    message: m
    rationale: r
""",
    "term-level": """
name: term-level
rules:
  - id: every-indemnity
    term: indemnity
    severity: WARN
    approver: legal
    message: m
    rationale: r
""",
    "joins-only": """
name: joins-only
rules:
  - id: confidentiality-needed
    require: {exists: confidentiality}
    severity: BLOCK
    approver: legal
    message: m
    rationale: r
""",
}

TINY_PARAMETER_RULESET = """
name: tiny-parameter
parameters:
  negligible_share: 0.00001
rules:
  - id: negligible-share
    term: revenue_share
    when: rate < $negligible_share
    severity: WARN
    approver: finance
    message: m
    rationale: r
"""


class _GarblingEngine:
    """durable_rules, except that the first action of a session comes back unreadable."""

    def __getattr__(self, name: str) -> Any:
        return getattr(durable_rules_engine, name)

    def start_action_for_state(self, handle: int, state: int) -> tuple[str, str] | None:
        result = durable_rules_engine.start_action_for_state(handle, state)
        return (result[0], '["not", "bindings"]') if result else None


def checked(raw: RawPackage) -> TermPackage:
    return check_package(raw, default_vocabulary())


def fired_ids(evaluator: Evaluator, package: TermPackage) -> set[str]:
    """The rule ids the engine finds for a package."""
    return {evaluator.ruleset.rules[rule].id for rule, _ in evaluator.matches(package)}


def reference_ids(evaluator: Evaluator, package: TermPackage) -> set[str]:
    """The rule ids the reference interpreter finds for a package."""
    found = reference.violations(evaluator.ruleset, facts.project(package, evaluator.compiled))
    return {evaluator.ruleset.rules[rule].id for rule, _ in found}


def package_of(terms: Sequence[RawPackage], deal_id: str = "perm") -> TermPackage:
    return checked({"deal_id": deal_id, "terms": list(terms)})


def run_python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a script in a fresh interpreter of this environment."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ruleset_from(source: str) -> Ruleset:
    result = validate_source(source)
    assert result.ruleset is not None, [str(d) for d in result.diagnostics]
    return result.ruleset


@pytest.fixture(scope="module")
def partner_alliance() -> Ruleset:
    return find_ruleset(DEFAULT_RULESET)


@pytest.fixture(scope="module")
def evaluator(partner_alliance: Ruleset) -> Iterator[Evaluator]:
    evaluator = Evaluator(partner_alliance)
    yield evaluator
    evaluator.close()


class TestLateNegation:
    """A negated term that comes after the term needing it still counts."""

    def test_needed_terms_count_in_every_order(self, evaluator: Evaluator) -> None:
        """Every permutation of a package holding each needed term approves."""
        terms = [*NEEDING_TERMS, *NEEDED_TERMS.values()]
        orders = 0
        for order in itertools.permutations(terms):
            package = package_of(order)
            assert set() == fired_ids(evaluator, package), [term["type"] for term in order]
            orders += 1
        assert 720 == orders

    def test_missing_needed_term_fires_in_every_order(self, evaluator: Evaluator) -> None:
        """Without one needed term, its rule fires whatever the order of the others."""
        for missing, rule_id in RULE_WITHOUT.items():
            others = [*NEEDING_TERMS, *(t for name, t in NEEDED_TERMS.items() if name != missing)]
            for order in itertools.permutations(others):
                package = package_of(order)
                assert {rule_id} == fired_ids(evaluator, package), [t["type"] for t in order]
                assert {rule_id} == reference_ids(evaluator, package)

    def test_seed_package_approves(self, evaluator: Evaluator) -> None:
        """The seed package, with confidentiality last, approves."""
        assert Decision.APPROVE == evaluator.evaluate(checked(SEED)).decision

    def test_raw_durable_rules_still_has_the_bug(self) -> None:
        """Without the trigger-first pattern, raw durable_rules ignores the late negated fact."""
        result = run_python(RAW_NEGATION_SCRIPT)
        assert 0 == result.returncode, result.stderr
        fired = json.loads(result.stdout)
        assert "trigger_first" not in fired, (
            "the trigger-first workaround fails in raw durable_rules"
        )
        assert ["excl_without_commitment"] == fired, (
            "durable_rules now honours a negated fact asserted after the positive one: the "
            "workaround in termdesk.engine (deal fact last, every rule starting with it) "
            "may be dropped"
        )


class TestDeleteStateCrash:
    """Sessions that find no violation are deleted without crashing the process."""

    def test_clean_packages_many_times_in_a_subprocess(self) -> None:
        """Thousands of clean evaluations through the adapter exit normally."""
        clean = [SEED, {"deal_id": "c", "terms": [{"type": "confidentiality"}]}]
        result = run_python(ADAPTER_CLEAN_SCRIPT, json.dumps(clean), str(CLEAN_EVALUATIONS))
        assert 0 == result.returncode, (
            f"the evaluating process ended with {result.returncode} (negative: killed by that "
            f"signal, -11 or -6 from the delete_state crash): {result.stderr[-2000:]}"
        )
        assert str(CLEAN_EVALUATIONS) == result.stdout.strip()

    @pytest.mark.parametrize("name", [DEFAULT_RULESET, *SMALL_RULESETS])
    def test_canary_in_every_compiled_ruleset(self, name: str, partner_alliance: Ruleset) -> None:
        """Every compiled ruleset has the canary, matching the deal fact unconditionally."""
        ruleset = (
            partner_alliance if name == DEFAULT_RULESET else ruleset_from(SMALL_RULESETS[name])
        )
        compiled = compile_ruleset(ruleset)
        assert CANARY_RULE == CANARY
        assert {"all": [{"d": {"t": DEAL_FACT_TYPE}}]} == compiled.engine_rules[CANARY]

    def test_canary_dispatches_an_action_for_a_clean_package(self, evaluator: Evaluator) -> None:
        """For a package without violations, the session still dispatches the canary."""
        batch = [
            {**fact, "sid": "canary"} for fact in facts.project(checked(SEED), evaluator.compiled)
        ]
        handle = durable_rules_engine.create_ruleset(
            "canary-check", json.dumps(evaluator.compiled.engine_rules)
        )
        fired: list[str] = []
        try:
            _, state = durable_rules_engine.assert_facts(handle, json.dumps(batch))
            result = durable_rules_engine.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                fired.extend(json.loads(message))
                message = durable_rules_engine.complete_and_start_action(handle, state)
        finally:
            durable_rules_engine.delete_state(handle, "canary")
            durable_rules_engine.delete_ruleset(handle)
        assert [CANARY] == fired

    def test_engine_refuses_rules_without_canary(self) -> None:
        """The adapter will not run a ruleset that lacks the canary rule."""
        with pytest.raises(ValueError, match=CANARY_RULE):
            RuleEngine("no-canary", {"r": {"all": [{"d": {"t": DEAL_FACT_TYPE}}]}})


class TestSessions:
    """One session per evaluation, always deleted, never shared."""

    def test_more_evaluations_than_live_sessions_allowed(self, evaluator: Evaluator) -> None:
        """1100 sequential evaluations on one engine (1024 sessions may live) all answer."""
        seed = checked(SEED)
        no_confidentiality = package_of(SEED["terms"][:1])
        for number in range(1100):
            if number % 2:
                assert {"must-have.confidentiality"} == fired_ids(evaluator, no_confidentiality)
            else:
                assert set() == fired_ids(evaluator, seed)

    def test_facts_do_not_leak_into_the_next_evaluation(self, evaluator: Evaluator) -> None:
        """A term of one evaluation is not seen by the next one."""
        with_confidentiality = checked(SEED)
        without = package_of(SEED["terms"][:1])
        assert set() == fired_ids(evaluator, with_confidentiality)
        assert {"must-have.confidentiality"} == fired_ids(evaluator, without)
        assert set() == fired_ids(evaluator, with_confidentiality)

    def test_closed_engine_raises(self, partner_alliance: Ruleset) -> None:
        """Matching on a closed engine raises EngineError; closing twice is harmless."""
        evaluator = Evaluator(partner_alliance)
        package = checked(SEED)
        assert set() == evaluator.matches(package)
        evaluator.close()
        evaluator.close()
        with pytest.raises(EngineError, match="closed"):
            evaluator.matches(package)


class TestErrors:
    """What durable_rules refuses or fails at becomes EngineError."""

    def test_refused_ruleset_raises_engine_error(self) -> None:
        """A ruleset durable_rules refuses becomes EngineError."""
        rules = {
            CANARY_RULE: {"all": [{"d": {"t": DEAL_FACT_TYPE}}]},
            "bad": {"all": [{"m": {"$zz": {"a": 1}}}]},
        }
        with pytest.raises(EngineError, match="refused"):
            RuleEngine("refused", rules)

    def test_unreadable_result_raises_engine_error(
        self, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A result that is not an object of bindings becomes EngineError; the next match works."""
        package = package_of(SEED["terms"][:1])
        monkeypatch.setattr(engine_module, "durable_rules_engine", _GarblingEngine())
        with pytest.raises(EngineError, match="unreadable"):
            evaluator.matches(package)
        monkeypatch.undo()
        assert {"must-have.confidentiality"} == fired_ids(evaluator, package)


class TestNumbers:
    """Numbers reach durable_rules in a notation it reads."""

    def test_tiny_rate_does_not_crash_the_process(self) -> None:
        """A revenue share of 0.00005 is evaluated without killing the process."""
        result = run_python(ADAPTER_TINY_RATE_SCRIPT)
        assert 0 == result.returncode, f"exit {result.returncode}: {result.stderr[-2000:]}"
        assert "REJECT" == result.stdout.strip()

    def test_tiny_parameter_loads(self) -> None:
        """A ruleset with a parameter of 0.00001 compiles into an engine that answers."""
        evaluator = Evaluator(ruleset_from(TINY_PARAMETER_RULESET))
        try:
            raw = {"deal_id": "t", "terms": [{"type": "revenue_share", "fields": {"rate": 0}}]}
            assert {"negligible-share"} == fired_ids(evaluator, checked(raw))
        finally:
            evaluator.close()
