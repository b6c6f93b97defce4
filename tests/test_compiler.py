"""Tests of termdesk.ruleset.compiler: the durable_rules JSON and the fact projection.

The shipped ruleset is compiled once; small rulesets are written inline (`ruleset_of`)
when a test needs one construct on its own.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import dataclasses
import json

import pytest

from termdesk import facts
from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.ruleset.compiler import (
    CANARY,
    CONTEXT,
    DEAL_FACT_TYPE,
    MAX_CLAUSES_PER_RULE,
    MAX_ENGINE_RULES,
    CompiledRuleset,
    Feature,
    clause_count,
    compile_ruleset,
)
from termdesk.ruleset.model import Rule, Ruleset
from termdesk.ruleset.validator import validate_source
from termdesk.vocabulary import check_package, default_vocabulary

# Term types the inline rules join on: each `{exists: <type>}` is its own engine pattern.
JOIN_TYPES = (
    "referral_fee",
    "payment_terms",
    "partner_commitments",
    "mfn",
    "deal_registration",
    "territory",
    "marketing_approval",
    "data_sharing",
    "data_handling",
    "termination",
    "indemnity",
    "performance_guarantee",
    "tiered_incentive",
    "shared_investment",
    "governance",
    "escalation_path",
    "co_marketing",
)


def rule_yaml(rule_id: str, condition: str, term: str | None = None) -> str:
    """A REVIEW rule with `when: <condition>` (flow-style YAML), on `term` when given."""
    term_line = f"    term: {term}\n" if term else ""
    return (
        f"  - id: {rule_id}\n{term_line}    when: {condition}\n"
        "    severity: REVIEW\n    approver: deal_desk\n"
        '    message: "x"\n    rationale: "y"\n'
    )


def ruleset_of(*rules: str) -> Ruleset:
    """A checked ruleset holding `rules`; fails the test when it does not validate."""
    result = validate_source("name: demo\nrules:\n" + "".join(rules), "demo.yaml")
    assert [] == [str(d) for d in result.diagnostics]
    assert result.ruleset is not None
    return result.ruleset


def only_rule(condition: str, term: str | None = None) -> Rule:
    """The checked form of one rule with `when: <condition>`."""
    return ruleset_of(rule_yaml("demo.rule", condition, term)).rules[0]


def exists_any(types: tuple[str, ...]) -> str:
    """`{any: [{exists: a}, {exists: b}, ...]}`: one join alternative per type."""
    return "{any: [" + ", ".join(f"{{exists: {name}}}" for name in types) + "]}"


def patterns(compiled: CompiledRuleset, name: str) -> list[dict[str, object]]:
    """The patterns (`all:` list) of one engine rule."""
    rule = compiled.engine_rules[name]
    assert isinstance(rule, dict)
    found = rule["all"]
    assert isinstance(found, list)
    return found


def fact_type(pattern: object) -> object:
    """The `t` a durable_rules pattern tests, alone or first in an `$and`."""
    assert isinstance(pattern, dict)
    if "$and" in pattern:
        return fact_type(pattern["$and"][0])
    return pattern["t"]


def keys(features: frozenset[Feature]) -> set[str]:
    """The fact keys a projection stores."""
    return {feature.key for feature in features}


@pytest.fixture(scope="module")
def shipped() -> CompiledRuleset:
    return compile_ruleset(find_ruleset(DEFAULT_RULESET))


class TestEngineRules:
    def test_every_engine_rule_starts_with_the_deal_fact(self, shipped: CompiledRuleset) -> None:
        """Each durable_rules rule's first pattern is `d` on the deal fact (the trigger)."""
        for name in shipped.engine_rules:
            first = patterns(shipped, name)[0]
            assert ["d"] == list(first), name
            assert DEAL_FACT_TYPE == fact_type(first["d"]), name

    def test_canary_rule_always_fires_on_the_deal(self, shipped: CompiledRuleset) -> None:
        """The canary rule matches the deal fact alone, with no test."""
        assert {"all": [{"d": {"t": DEAL_FACT_TYPE}}]} == shipped.engine_rules[CANARY]
        assert CANARY not in shipped.rule_of_clause

    def test_every_rule_has_a_clause_and_every_clause_a_rule(
        self, shipped: CompiledRuleset
    ) -> None:
        """Each checked rule compiles to at least one engine rule, mapped back to it."""
        assert set(shipped.engine_rules) - {CANARY} == set(shipped.rule_of_clause)
        assert set(range(len(shipped.ruleset.rules))) == set(shipped.rule_of_clause.values())

    def test_term_rule_matches_its_term_as_s(self, shipped: CompiledRuleset) -> None:
        """A rule with `term:` puts that term type in the second pattern, `s`."""
        index = next(
            i for i, rule in enumerate(shipped.ruleset.rules) if rule.id == "exclusivity.time-limit"
        )
        (name,) = [n for n, i in shipped.rule_of_clause.items() if i == index]
        found = patterns(shipped, name)
        assert ["d", "s"] == [next(iter(pattern)) for pattern in found]
        assert "exclusivity" == fact_type(found[1]["s"])

    def test_compiled_rules_are_json(self, shipped: CompiledRuleset) -> None:
        """The engine rules survive a JSON round trip unchanged (they are sent as JSON)."""
        assert shipped.engine_rules == json.loads(json.dumps(shipped.engine_rules))

    def test_missing_term_is_a_not_pattern(self, shipped: CompiledRuleset) -> None:
        """must-have.confidentiality is the deal fact and `$not` a confidentiality term."""
        index = next(
            i
            for i, rule in enumerate(shipped.ruleset.rules)
            if rule.id == "must-have.confidentiality"
        )
        (name,) = [n for n, i in shipped.rule_of_clause.items() if i == index]
        assert [{"d": {"t": DEAL_FACT_TYPE}}, {"n0$not": {"t": "confidentiality"}}] == patterns(
            shipped, name
        )


class TestClauses:
    def test_context_or_join_expands_to_several_clauses(self) -> None:
        """`any:` across a context test and two term joins is one engine rule per branch."""
        rule = only_rule(
            "{any: ['context.agreement_months > 12', {exists: tiered_incentive}, "
            "{exists: revenue_share}]}"
        )
        assert 3 == clause_count(rule)

    def test_shipped_review_points_rule_has_three_clauses(self, shipped: CompiledRuleset) -> None:
        """governance.review-points (agreement length, tiers or revenue share) has 3 clauses."""
        rule = shipped.ruleset.rule("governance.review-points")
        assert rule is not None
        assert 3 == clause_count(rule)
        index = shipped.ruleset.rules.index(rule)
        assert 3 == sum(1 for i in shipped.rule_of_clause.values() if i == index)

    def test_each_clause_holds_its_own_branch(self) -> None:
        """The context branch tests the deal fact; the join branch adds a `j0` pattern."""
        compiled = compile_ruleset(
            ruleset_of(
                rule_yaml("demo.rule", "{any: ['context.agreement_months > 12', {exists: mfn}]}")
            )
        )
        assert [
            [{"d": {"$and": [{"t": DEAL_FACT_TYPE}, {"$gt": {"agreement_months": 12}}]}}],
            [{"d": {"t": DEAL_FACT_TYPE}}, {"j0": {"t": "mfn"}}],
        ] == [patterns(compiled, "r0c0"), patterns(compiled, "r0c1")]

    def test_same_term_alternatives_stay_one_or(self) -> None:
        """`any:` over fields of the matched term is one clause: one `s` pattern with `$or`."""
        ruleset = ruleset_of(
            rule_yaml(
                "demo.rule",
                "{any: ['duration_months > 12', \"reversion == 'none'\"]}",
                "exclusivity",
            )
        )
        assert 1 == clause_count(ruleset.rules[0])
        compiled = compile_ruleset(ruleset)
        assert ["r0c0", CANARY] == list(compiled.engine_rules)
        assert [
            {"d": {"t": DEAL_FACT_TYPE}},
            {
                "s": {
                    "$and": [
                        {"t": "exclusivity"},
                        {"$or": [{"$gt": {"duration_months": 12}}, {"reversion": "none"}]},
                    ]
                }
            },
        ] == patterns(compiled, "r0c0")

    def test_same_context_alternatives_stay_one_or(self) -> None:
        """`any:` over deal-context fields is one clause, its `$or` in the deal pattern."""
        ruleset = ruleset_of(
            rule_yaml(
                "demo.rule",
                "{any: [\"context.partner_type == 'reseller'\", 'context.agreement_months > 12']}",
            )
        )
        assert 1 == clause_count(ruleset.rules[0])
        compiled = compile_ruleset(ruleset)
        assert [
            {
                "d": {
                    "$and": [
                        {"t": DEAL_FACT_TYPE},
                        {
                            "$or": [
                                {"partner_type": "reseller"},
                                {"$gt": {"agreement_months": 12}},
                            ]
                        },
                    ]
                }
            }
        ] == patterns(compiled, "r0c0")

    def test_context_alternatives_group_beside_a_join(self) -> None:
        """Two context tests and one join make two clauses, not three."""
        rule = only_rule(
            "{any: [\"context.partner_type == 'reseller'\", 'context.agreement_months > 12', "
            "{exists: mfn}]}"
        )
        assert 2 == clause_count(rule)

    def test_all_of_alternatives_multiplies(self) -> None:
        """all(any(2 joins), any(2 joins)) expands to the 4 combinations."""
        rule = only_rule(
            "{all: [" + exists_any(JOIN_TYPES[:2]) + ", " + exists_any(JOIN_TYPES[2:4]) + "]}"
        )
        assert 4 == clause_count(rule)


class TestProjection:
    def test_exclusivity_projection_holds_only_read_fields(self, shipped: CompiledRuleset) -> None:
        """Exclusivity facts carry the fields rules read, and list counts, not the lists."""
        projected = keys(shipped.projection["exclusivity"])
        assert {"duration_months", "min_verified_activations", "reversion"} <= projected
        assert {"segments__n", "geographies__n", "use_cases__n"} <= projected
        assert not {"segments", "geographies", "use_cases"} & projected

    def test_context_projection_holds_only_read_fields(self, shipped: CompiledRuleset) -> None:
        """The deal fact carries the context fields rules read, not region or value."""
        projected = keys(shipped.projection[CONTEXT])
        assert {"agreement_months", "partner_type", "strategic_importance"} <= projected
        assert not {"region", "segment", "annual_value"} & projected

    def test_unread_term_types_are_not_projected(self, shipped: CompiledRuleset) -> None:
        """Term types no rule mentions (the giveaways) are not sent to the engine."""
        assert "co_marketing" not in shipped.projection
        assert "enablement" not in shipped.projection

    def test_tested_only_for_existence_projects_no_field(self) -> None:
        """A term type rules only test for the presence of is projected with no value."""
        compiled = compile_ruleset(
            ruleset_of(rule_yaml("demo.rule", "{absent_term: data_handling}", "data_sharing"))
        )
        assert frozenset() == compiled.projection["data_handling"]
        assert frozenset() == compiled.projection["data_sharing"]

    def test_counts_and_orderings_are_features(self, shipped: CompiledRuleset) -> None:
        """`count(...)` and `ascending(...)`/`non_decreasing(...)` are derived features."""
        assert Feature("count", "segments", "segments__n") in shipped.projection["exclusivity"]
        assert {
            Feature("ascending", "tiers", "tiers__threshold__asc", "threshold"),
            Feature("non_decreasing", "tiers", "tiers__rate__nondesc", "rate"),
        } == set(shipped.projection["tiered_incentive"])

    def test_projected_facts_carry_only_projected_values(self) -> None:
        """A projected package holds counts for lists, drops unread fields, deal fact last."""
        compiled = compile_ruleset(
            ruleset_of(
                rule_yaml(
                    "demo.rule",
                    "{all: ['count(segments) > 1', 'duration_months <= 12']}",
                    "exclusivity",
                ),
                rule_yaml("demo.context", "'context.agreement_months > 12'"),
            )
        )
        package = check_package(
            {
                "deal_id": "p",
                "context": {"region": "UK", "agreement_months": 24},
                "terms": [
                    {
                        "type": "exclusivity",
                        "fields": {"segments": ["a", "b"], "duration_months": 6, "mutual": True},
                    },
                    {"type": "co_marketing", "fields": {"assets": ["case study"]}},
                ],
            },
            default_vocabulary(),
        )
        assert [
            {"id": "t0", "t": "exclusivity", "i": 0, "segments__n": 2, "duration_months": 6},
            {"id": "deal", "t": DEAL_FACT_TYPE, "i": -1, "agreement_months": 24},
        ] == facts.project(package, compiled)

    def test_inline_rule_projects_exactly_what_it_reads(self) -> None:
        """A one-rule ruleset projects its one field, and no other field of the term."""
        compiled = compile_ruleset(
            ruleset_of(rule_yaml("demo.rule", "net_days < 30", "payment_terms"))
        )
        assert {"net_days"} == keys(compiled.projection["payment_terms"])
        assert frozenset() == compiled.projection[CONTEXT]


class TestLimits:
    def test_rule_past_the_clause_limit_is_too_complex(self) -> None:
        """A rule expanding past MAX_CLAUSES_PER_RULE gets a too_complex diagnostic."""
        condition = (
            "{all: [" + exists_any(JOIN_TYPES[:5]) + ", " + exists_any(JOIN_TYPES[5:9]) + "]}"
        )
        text = "name: demo\nrules:\n" + rule_yaml("demo.wide", condition)
        result = validate_source(text, "demo.yaml")
        assert result.ruleset is None
        assert [("too_complex", 3, "demo.wide")] == [
            (d.code, d.line, d.rule_id) for d in result.diagnostics
        ]
        assert f"expands to 20 engine rules; the limit is {MAX_CLAUSES_PER_RULE}" in (
            result.diagnostics[0].message
        )
        assert "split it" in result.diagnostics[0].help

    def test_rule_at_the_clause_limit_is_accepted(self) -> None:
        """A rule expanding to exactly MAX_CLAUSES_PER_RULE clauses is fine."""
        condition = (
            "{all: [" + exists_any(JOIN_TYPES[:4]) + ", " + exists_any(JOIN_TYPES[4:8]) + "]}"
        )
        rule = only_rule(condition)
        assert MAX_CLAUSES_PER_RULE == clause_count(rule)

    def test_compiling_past_the_engine_limit_raises(self) -> None:
        """The compiler refuses more than MAX_ENGINE_RULES engine rules even when handed a
        ruleset the validator never saw whole (two valid halves joined)."""
        halves = [
            ruleset_of(
                *(
                    rule_yaml(f"demo.r{n}", exists_any(JOIN_TYPES[:MAX_CLAUSES_PER_RULE]))
                    for n in range(start, start + 8)
                )
            )
            for start in (0, 8)
        ]
        joined = dataclasses.replace(halves[0], rules=halves[0].rules + halves[1].rules)
        with pytest.raises(ValueError, match=f"at most {MAX_ENGINE_RULES}"):
            compile_ruleset(joined)

    def test_required_term_where_absent_compiles(self) -> None:
        """A rule requiring a term whose field is absent compiles once it validates."""
        ruleset = ruleset_of(
            rule_yaml(
                "demo.rule",
                "'rate > 0.3'",
                "revenue_share",
            ).replace(
                "    severity:",
                "    require: {exists: {term: partner_commitments, "
                "where: 'absent(weekly_reporting_days)'}}\n    severity:",
            )
        )
        compiled = compile_ruleset(ruleset)
        assert "r0c0" in compiled.engine_rules

    def test_ruleset_past_the_engine_limit_gets_a_diagnostic(self) -> None:
        """A ruleset that would not fit in durable_rules is refused by validation."""
        rules = [
            rule_yaml(f"demo.r{n}", exists_any(JOIN_TYPES[:MAX_CLAUSES_PER_RULE]))
            for n in range(16)
        ]
        result = validate_source("name: demo\nrules:\n" + "".join(rules), "demo.yaml")
        assert result.ruleset is None
        assert result.errors != ()
