"""Tests of termdesk.wording: the shipped ruleset and a small one in plain words."""

# House style (shared STYLE.md) writes `assert expected == actual`.

from __future__ import annotations

import re

import pytest

from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.ruleset.conditions import (
    AnyOf,
    Compare,
    Const,
    Count,
    Field,
    Not,
    OneOf,
    TermExists,
)
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import validate_source
from termdesk.vocabulary import Vocabulary, default_vocabulary
from termdesk.wording import RuleWording, catalog, describe_condition, describe_rule

# What the rule language writes and a reader must never see.
RAW_TOKENS = re.compile(r"<=|>=|==|!=|[<>$]|count\(|present\(|absent\(|\w+_\w+\(|\bNone\b")


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return default_vocabulary()


@pytest.fixture(scope="module")
def ruleset(vocabulary: Vocabulary) -> Ruleset:
    return find_ruleset(DEFAULT_RULESET, vocabulary=vocabulary)


@pytest.fixture(scope="module")
def wordings(ruleset: Ruleset, vocabulary: Vocabulary) -> dict[str, RuleWording]:
    return {wording.rule_id: wording for wording in catalog(ruleset, vocabulary)}


class TestShippedRuleset:
    def test_catalog_follows_rule_order(
        self, ruleset: Ruleset, vocabulary: Vocabulary, wordings: dict[str, RuleWording]
    ) -> None:
        assert [rule.id for rule in ruleset.rules] == list(wordings)
        assert 34 == len(wordings)

    def test_every_rule_reads_as_plain_words(self, wordings: dict[str, RuleWording]) -> None:
        """Each rule says what it checks, with no operator or function of the rule language."""
        for wording in wordings.values():
            texts = [wording.checks, wording.when, *wording.trades]
            assert wording.checks, wording.rule_id
            for text in texts:
                assert not RAW_TOKENS.search(text), (wording.rule_id, text)
                assert text == "" or (text[0].isupper() and text.endswith(".")), text

    def test_time_limit_names_the_limit_unit_and_parameter(
        self, wordings: dict[str, RuleWording]
    ) -> None:
        wording = wordings["exclusivity.time-limit"]
        assert "Each exclusivity term" == wording.applies_to
        assert "at most 12 months" in wording.checks
        assert "max_exclusivity_months" in wording.checks
        assert "" == wording.when
        assert ("BLOCK", "legal") == (wording.severity, wording.approver)
        assert wording.rationale.startswith("Exclusivity must end on its own")

    def test_set_trade_names_field_value_and_parameter(
        self, wordings: dict[str, RuleWording]
    ) -> None:
        assert (
            "Set the exclusivity's duration months to 12 months "
            "(parameter max_exclusivity_months).",
        ) == wordings["exclusivity.time-limit"].trades

    def test_trade_taking_another_fields_value(self, wordings: dict[str, RuleWording]) -> None:
        (trade,) = wordings["revenue-share.renewal-step-down"].trades
        assert "Set the revenue share's renewal rate to its rate." == trade

    def test_manual_trade_is_its_text(self, wordings: dict[str, RuleWording]) -> None:
        assert ("Name the segments, geographies or use cases the exclusivity covers.",) == wordings[
            "exclusivity.scope-required"
        ].trades

    def test_added_term_lists_its_fields(self, wordings: dict[str, RuleWording]) -> None:
        (trade,) = wordings["governance.review-points"].trades
        assert (
            "Add a review schedule term "
            "(checkpoints days: 30, 60 and 90 days; quarterly business review: yes)."
        ) == trade

    def test_trade_with_summary_says_it_and_its_changes(
        self, wordings: dict[str, RuleWording]
    ) -> None:
        trade = wordings["mfn.narrowed"].trades[2]
        assert trade.startswith("Transparency instead of MFN")
        assert "remove the MFN term" in trade
        assert "add a review schedule term" in trade.lower()

    def test_when_is_worded(self, wordings: dict[str, RuleWording]) -> None:
        assert (
            "Only when the payment terms' net days is less than 30 days "
            "(parameter standard_net_days)."
        ) == wordings["payment.fast-payment-trade"].when

    def test_alternatives_say_one_must_hold(self, wordings: dict[str, RuleWording]) -> None:
        checks = wordings["payment.fast-payment-trade"].checks
        assert checks.startswith("At least one of these must hold: ")
        assert "one of activation, invoice collection or retention milestone" in checks
        assert "a revenue share term where its rate is at most 15%" in checks
        assert "reduced_rate_for_fast_payment" in checks

    def test_counts_read_as_lists(self, wordings: dict[str, RuleWording]) -> None:
        assert (
            "The exclusivity must list at least 1 segment, list at least 1 geography "
            "or list at least 1 use case."
        ) == wordings["exclusivity.scope-required"].checks
        narrow = wordings["exclusivity.scope-narrow"].checks
        assert "at most 2 segments (parameter max_exclusive_segments)" in narrow

    def test_rule_with_only_a_condition_says_what_must_not_be(
        self, wordings: dict[str, RuleWording]
    ) -> None:
        ceiling = wordings["revenue-share.rate-ceiling"]
        assert (
            "The revenue share's rate must not be more than 30% (parameter standard_max_share)."
        ) == ceiling.checks
        assert ceiling.when.startswith("Only when the revenue share's rate is more than 30%")

    def test_deal_level_rule(self, wordings: dict[str, RuleWording]) -> None:
        wording = wordings["must-have.confidentiality"]
        assert "The deal as a whole" == wording.applies_to
        assert "The deal must include a confidentiality term." == wording.checks
        assert ("Add a confidentiality term (mutual: yes; years: 3 years).",) == wording.trades

    def test_context_fields_belong_to_the_deal(self, wordings: dict[str, RuleWording]) -> None:
        when = wordings["governance.review-points"].when
        assert "the deal's agreement months is more than 12 months" in when
        assert "the deal includes a tiered incentive term" in when

    def test_every_rule_with_a_condition_or_trades_says_so(
        self, ruleset: Ruleset, wordings: dict[str, RuleWording]
    ) -> None:
        for rule in ruleset.rules:
            wording = wordings[rule.id]
            assert bool(wording.when) == (rule.when is not None), rule.id
            assert len(rule.trades) == len(wording.trades), rule.id
            assert all(wording.trades), rule.id

    def test_output_is_deterministic(self, ruleset: Ruleset, vocabulary: Vocabulary) -> None:
        assert catalog(ruleset, vocabulary) == catalog(ruleset, vocabulary)


DEMO = """\
name: demo
description: a ruleset written for the wording tests
version: 1
parameters:
  max_exclusivity_months: {value: 12, description: "longest exclusivity"}
buckets:
  must_have: [confidentiality]
rules:
  - id: demo.reversion
    term: exclusivity
    when: {not: {exists: data_handling}}
    require:
      any:
        - reversion in ['non_exclusive', 'terminate']
        - segments contains 'uk'
        - {not: {all: [audit_rights, mutual]}}
    severity: REVIEW
    approver: legal
    message: "no reversion"
    rationale: "a test rule"
  - id: demo.purpose
    term: data_sharing
    when: purpose matches '.*marketing.*'
    require:
      exists: {term: exclusivity, where: duration_months <= $max_exclusivity_months}
    severity: WARN
    approver: deal_desk
    message: "marketing data without a short exclusivity"
    rationale: "a test rule"
    trades:
      - add: {exclusivity: {duration_months: $max_exclusivity_months}}
      - unset: [purpose]
  - id: demo.no-mfn
    require: {absent_term: mfn}
    severity: BLOCK
    approver: legal
    message: "an MFN"
    rationale: "a test rule"
    trades:
      - remove: [mfn]
"""


@pytest.fixture(scope="module")
def demo(vocabulary: Vocabulary) -> dict[str, RuleWording]:
    result = validate_source(DEMO, "rulesets/demo/ruleset.yaml", vocabulary)
    assert result.ruleset is not None, [str(d) for d in result.diagnostics]
    return {w.rule_id: w for w in catalog(result.ruleset, vocabulary)}


class TestHandWrittenRuleset:
    def test_alternatives_with_one_of_contains_and_not(self, demo: dict[str, RuleWording]) -> None:
        assert (
            "At least one of these must hold: "
            "the exclusivity's reversion is one of non exclusive or terminate; "
            'its segments includes "uk"; '
            "it is not the case that the exclusivity's audit rights is yes "
            "and its mutual is yes."
        ) == demo["demo.reversion"].checks

    def test_negated_exists_in_when(self, demo: dict[str, RuleWording]) -> None:
        assert (
            "Only when the deal does not include a data handling term."
            == demo["demo.reversion"].when
        )

    def test_matches_and_exists_with_where(self, demo: dict[str, RuleWording]) -> None:
        wording = demo["demo.purpose"]
        assert 'Only when the data sharing\'s purpose matches the pattern ".*marketing.*".' == (
            wording.when
        )
        assert (
            "The deal must include an exclusivity term where its duration months is at most "
            "12 months (parameter max_exclusivity_months)."
        ) == wording.checks
        assert (
            "Add an exclusivity term (duration months: 12 months).",
            "Clear the data sharing's purpose.",
        ) == wording.trades

    def test_absent_term_and_removal(self, demo: dict[str, RuleWording]) -> None:
        wording = demo["demo.no-mfn"]
        assert "The deal as a whole" == wording.applies_to
        assert "The deal must not include an MFN term." == wording.checks
        assert ("Remove the MFN term.",) == wording.trades


class TestDescribeCondition:
    def test_built_condition(self, vocabulary: Vocabulary) -> None:
        """Conditions built in code read the same way, with the term named by `term_type`."""
        condition = AnyOf(
            (
                OneOf(Field("term", "reversion"), (Const("non_exclusive"),)),
                Not(Compare(Count("term", "segments"), ">", Const(3, "most"))),
                TermExists("exclusivity"),
            )
        )
        assert (
            "at least one of these holds: the exclusivity's reversion is non exclusive; "
            "it does not list more than 3 segments (parameter most); "
            "the deal includes another exclusivity term"
        ) == describe_condition(condition, vocabulary, "exclusivity")

    def test_constant_on_the_left_is_turned_around(self, vocabulary: Vocabulary) -> None:
        condition = Compare(Const(30, "standard_net_days"), ">", Field("term", "net_days"))
        assert (
            "the payment terms' net days is less than 30 days (parameter standard_net_days)"
            == describe_condition(condition, vocabulary, "payment_terms")
        )

    def test_describe_rule_matches_catalog(
        self, ruleset: Ruleset, vocabulary: Vocabulary, wordings: dict[str, RuleWording]
    ) -> None:
        rule = ruleset.rules[0]
        assert wordings[rule.id] == describe_rule(rule, ruleset, vocabulary)
