"""Tests of termdesk.evaluator with the shipped ruleset: decisions, violations, approvers.

Packages are written as the JSON a client sends and checked with `check_package`, so each
test goes through the same path as a request: vocabulary check, facts, engine, decision.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.evaluator import Evaluator, decide
from termdesk.messages import placeholders
from termdesk.model import Decision, Evaluation, Severity, Violation
from termdesk.ruleset.model import Rule
from termdesk.vocabulary import check_package, default_vocabulary

RawPackage = dict[str, Any]

CONFIDENTIALITY: dict[str, Any] = {
    "type": "confidentiality",
    "fields": {"mutual": True, "years": 3},
}
REVIEW_SCHEDULE: dict[str, Any] = {
    "type": "review_schedule",
    "fields": {"quarterly_business_review": True},
}
GOOD_EXCLUSIVITY: dict[str, Any] = {
    "segments": ["mid-market healthcare"],
    "geographies": ["UK"],
    "duration_months": 6,
    "min_verified_activations": 25,
    "commitment_period_months": 6,
    "reversion": "non_exclusive",
    "audit_rights": True,
}

# DOMAIN.md section 3, the catalog's rule ids (binding: integrations key on them).
CATALOG_RULE_IDS = {
    "exclusivity.scope-required",
    "exclusivity.scope-narrow",
    "exclusivity.time-limit",
    "exclusivity.performance-commitment",
    "exclusivity.automatic-reversion",
    "exclusivity.audit-rights",
    "payment.fast-payment-trade",
    "payment.minimum-net-days",
    "revenue-share.basis-defined",
    "revenue-share.rate-ceiling",
    "revenue-share.rate-hard-cap",
    "revenue-share.renewal-step-down",
    "revenue-share.first-term-commitments",
    "mfn.narrowed",
    "deal-registration.window",
    "territory.objective-criteria",
    "marketing.approval-sla",
    "marketing.deemed-approval-brand-guide",
    "data-sharing.minimum-necessary",
    "data-sharing.reciprocity",
    "data-sharing.handling-terms",
    "mutuality.termination",
    "mutuality.indemnity",
    "mutuality.confidentiality",
    "mutuality.exclusivity",
    "referral.qualified-definition",
    "referral.acceptance-window",
    "guarantee.capped",
    "tiers.monotonic",
    "shared-investment.ownership",
    "governance.review-points",
    "alliance.governance",
    "alliance.escalation-path",
    "must-have.confidentiality",
}


def exclusivity(**changes: Any) -> dict[str, Any]:
    """An exclusivity term that passes every rule, with `changes` (None drops a field)."""
    fields = {**GOOD_EXCLUSIVITY, **changes}
    return {"type": "exclusivity", "fields": {k: v for k, v in fields.items() if v is not None}}


def payment(**fields: Any) -> dict[str, Any]:
    """A payment_terms term with `fields`."""
    return {"type": "payment_terms", "fields": fields}


def package(*terms: dict[str, Any], **context: Any) -> RawPackage:
    """A package as a client sends it: `terms` in order, `context` as given."""
    return {"deal_id": "deal-1", "context": context, "terms": list(terms)}


@pytest.fixture(scope="module")
def evaluator() -> Iterator[Evaluator]:
    """One evaluator of the shipped ruleset for the module (loading it takes a while)."""
    evaluator = Evaluator(find_ruleset(DEFAULT_RULESET))
    yield evaluator
    evaluator.close()


def evaluate(evaluator: Evaluator, raw: RawPackage) -> Evaluation:
    """Checks `raw` against the vocabulary, as a request is, then evaluates it."""
    return evaluator.evaluate(check_package(raw, default_vocabulary()))


def rule_ids(evaluation: Evaluation) -> list[str]:
    """The rule ids of the violations, in the order reported."""
    return [violation.rule_id for violation in evaluation.violations]


def rule_of(evaluator: Evaluator, rule_id: str) -> Rule:
    """The shipped rule `rule_id`."""
    rule = evaluator.ruleset.rule(rule_id)
    assert rule is not None, rule_id
    return rule


def only(evaluation: Evaluation, rule_id: str) -> Violation:
    """The one violation of `rule_id`."""
    found = [v for v in evaluation.violations if v.rule_id == rule_id]
    assert 1 == len(found), rule_ids(evaluation)
    return found[0]


class TestSeeds:
    def test_uk_healthcare_exclusivity_is_approved(self, evaluator: Evaluator) -> None:
        """Six-month UK mid-market healthcare exclusivity, 25 activations, reverting: APPROVE."""
        evaluation = evaluate(
            evaluator,
            package(
                exclusivity(),
                CONFIDENTIALITY,
                partner_type="reseller",
                segment="mid-market healthcare",
                region="UK",
            ),
        )
        assert Decision.APPROVE is evaluation.decision
        assert () == evaluation.violations
        assert () == evaluation.required_approvers

    def test_open_exclusivity_is_rejected_on_three_rules(self, evaluator: Evaluator) -> None:
        """Exclusivity with no time limit, commitment or reversion: REJECT on those three."""
        evaluation = evaluate(
            evaluator,
            package(
                exclusivity(
                    duration_months=None,
                    min_verified_activations=None,
                    commitment_period_months=None,
                    reversion=None,
                ),
                CONFIDENTIALITY,
                partner_type="reseller",
            ),
        )
        assert Decision.REJECT is evaluation.decision
        assert [
            "exclusivity.time-limit",
            "exclusivity.performance-commitment",
            "exclusivity.automatic-reversion",
        ] == rule_ids(evaluation)
        assert () == evaluation.required_approvers

    def test_net_15_without_verification_needs_finance(self, evaluator: Evaluator) -> None:
        """Net-15 payment with no verification: NEEDS_APPROVAL by finance alone."""
        evaluation = evaluate(
            evaluator, package(payment(net_days=15, verification="none"), CONFIDENTIALITY)
        )
        assert Decision.NEEDS_APPROVAL is evaluation.decision
        assert ["payment.fast-payment-trade"] == rule_ids(evaluation)
        assert ("finance",) == evaluation.required_approvers

    def test_net_15_with_invoice_collection_is_approved(self, evaluator: Evaluator) -> None:
        """Net-15 payment with invoice-collection verification: APPROVE."""
        evaluation = evaluate(
            evaluator,
            package(payment(net_days=15, verification="invoice_collection"), CONFIDENTIALITY),
        )
        assert Decision.APPROVE is evaluation.decision
        assert () == evaluation.violations

    def test_shipped_ruleset_has_every_catalog_rule(self, evaluator: Evaluator) -> None:
        """The shipped ruleset implements every rule id of the DOMAIN.md catalog."""
        assert CATALOG_RULE_IDS <= {rule.id for rule in evaluator.ruleset.rules}


class TestViolationFields:
    def test_violation_describes_the_term_as_sent(self, evaluator: Evaluator) -> None:
        """A violation names rule, severity, approver, term type, index, field and value."""
        evaluation = evaluate(evaluator, package(CONFIDENTIALITY, exclusivity(duration_months=24)))
        (violation,) = evaluation.violations
        assert (
            "exclusivity.time-limit",
            Severity.BLOCK,
            "legal",
            "exclusivity",
            1,
            "duration_months",
            24,
        ) == (
            violation.rule_id,
            violation.severity,
            violation.approver,
            violation.term_type,
            violation.term_index,
            violation.field,
            violation.actual,
        )
        assert re.search(r"\b24\b", violation.message), "quotes the duration sent"
        assert re.search(r"\b12\b", violation.message), "quotes $max_exclusivity_months"
        assert "{" not in violation.message
        assert rule_of(evaluator, "exclusivity.time-limit").rationale == violation.rationale
        assert violation.rationale

    def test_absent_field_is_reported_with_the_message_fallback(self, evaluator: Evaluator) -> None:
        """A field that is not set is `actual` None and the message shows its fallback."""
        evaluation = evaluate(evaluator, package(exclusivity(reversion=None), CONFIDENTIALITY))
        violation = only(evaluation, "exclusivity.automatic-reversion")
        assert ("reversion", None, 0) == (
            violation.field,
            violation.actual,
            violation.term_index,
        )
        template = rule_of(evaluator, "exclusivity.automatic-reversion").message
        (fallback,) = [p.fallback for p in placeholders(template) if p.name == "reversion"]
        assert fallback in violation.message
        assert "None" not in violation.message
        assert "{" not in violation.message

    def test_missing_confidentiality_has_index_minus_one(self, evaluator: Evaluator) -> None:
        """A missing must-have is reported on its term type with term_index -1."""
        evaluation = evaluate(evaluator, package(exclusivity()))
        violation = only(evaluation, "must-have.confidentiality")
        assert (Severity.BLOCK, "legal", "confidentiality", -1, "", None) == (
            violation.severity,
            violation.approver,
            violation.term_type,
            violation.term_index,
            violation.field,
            violation.actual,
        )
        rule = rule_of(evaluator, "must-have.confidentiality")
        assert (rule.message, rule.rationale) == (violation.message, violation.rationale)
        assert Decision.REJECT is evaluation.decision

    def test_message_quotes_values_and_parameters(self, evaluator: Evaluator) -> None:
        """The message quotes the term's values and the ruleset's thresholds."""
        evaluation = evaluate(
            evaluator, package(payment(net_days=15, verification="none"), CONFIDENTIALITY)
        )
        violation = only(evaluation, "payment.fast-payment-trade")
        assert re.search(r"\b15\b", violation.message), "quotes net_days"
        assert re.search(r"\b30\b", violation.message), "quotes $standard_net_days"
        assert ("payment_terms", 0, "net_days", 15) == (
            violation.term_type,
            violation.term_index,
            violation.field,
            violation.actual,
        )
        assert rule_of(evaluator, "payment.fast-payment-trade").rationale == violation.rationale

    def test_evaluation_names_the_ruleset(self, evaluator: Evaluator) -> None:
        """The evaluation carries the ruleset's name, version and digest."""
        evaluation = evaluate(evaluator, package(CONFIDENTIALITY))
        assert (DEFAULT_RULESET, evaluator.ruleset.version, evaluator.ruleset.digest) == (
            evaluation.ruleset.name,
            evaluation.ruleset.version,
            evaluation.ruleset.digest,
        )
        assert evaluation.ruleset.digest.startswith("sha256:")

    def test_two_exclusivity_terms_carry_their_own_index(self, evaluator: Evaluator) -> None:
        """Two exclusivity grants that break a rule are two violations, one per term index."""
        evaluation = evaluate(
            evaluator,
            package(
                exclusivity(duration_months=24),
                CONFIDENTIALITY,
                exclusivity(duration_months=36),
            ),
        )
        assert [("exclusivity.time-limit", 0, 24), ("exclusivity.time-limit", 2, 36)] == [
            (v.rule_id, v.term_index, v.actual) for v in evaluation.violations
        ]
        assert [
            "exclusivity lasts 24 months; the limit is 12",
            "exclusivity lasts 36 months; the limit is 12",
        ] == [v.message for v in evaluation.violations]

    def test_only_the_breaking_term_is_reported(self, evaluator: Evaluator) -> None:
        """Of two exclusivity terms, only the one that breaks the rule is reported."""
        evaluation = evaluate(
            evaluator, package(exclusivity(), exclusivity(audit_rights=False), CONFIDENTIALITY)
        )
        assert [("exclusivity.audit-rights", 1)] == [
            (v.rule_id, v.term_index) for v in evaluation.violations
        ]

    def test_deal_level_rule_fires_once(self, evaluator: Evaluator) -> None:
        """A deal-level rule reached through two branches is one violation, index -1."""
        evaluation = evaluate(
            evaluator,
            package(
                {"type": "revenue_share", "fields": {"rate": 0.2, "basis": "gross"}},
                {"type": "tiered_incentive", "fields": {"tiers": [{"threshold": 0, "rate": 0.1}]}},
                CONFIDENTIALITY,
                agreement_months=24,
            ),
        )
        assert [("governance.review-points", -1)] == [
            (v.rule_id, v.term_index) for v in evaluation.violations
        ]

    @pytest.mark.parametrize("rate_first", [True, False])
    @pytest.mark.parametrize(("rate", "fires"), [(0.15, False), (0.16, True)])
    def test_reduced_rate_pays_for_fast_payment_in_any_order(
        self, evaluator: Evaluator, rate: float, fires: bool, rate_first: bool
    ) -> None:
        """A revenue share at most 0.15 clears net-15, wherever it sits in the package."""
        share = {"type": "revenue_share", "fields": {"rate": rate, "basis": "gross"}}
        terms = [payment(net_days=15), CONFIDENTIALITY, REVIEW_SCHEDULE]
        terms.insert(0 if rate_first else len(terms), share)
        evaluation = evaluate(evaluator, package(*terms))
        expected = ["payment.fast-payment-trade"] if fires else []
        assert expected == rule_ids(evaluation)


class TestOrdering:
    def test_violations_are_ordered_block_review_warn(self, evaluator: Evaluator) -> None:
        """BLOCK violations come first, then REVIEW, then WARN."""
        evaluation = evaluate(
            evaluator,
            package(
                {"type": "marketing_approval", "fields": {"response_business_days": 10}},
                exclusivity(mutual=False),
                exclusivity(duration_months=24),
                strategic_importance="high",
            ),
        )
        assert {
            ("exclusivity.time-limit", Severity.BLOCK),
            ("must-have.confidentiality", Severity.BLOCK),
            ("mutuality.exclusivity", Severity.REVIEW),
            ("marketing.approval-sla", Severity.WARN),
            ("alliance.escalation-path", Severity.WARN),
        } == {(v.rule_id, v.severity) for v in evaluation.violations}
        assert [Severity.BLOCK, Severity.BLOCK, Severity.REVIEW, Severity.WARN, Severity.WARN] == [
            v.severity for v in evaluation.violations
        ]
        assert Decision.REJECT is evaluation.decision
        assert ("legal",) == evaluation.required_approvers


def violation(severity: Severity, approver: str, rule_id: str = "demo.rule") -> Violation:
    """A violation with only what `decide` reads filled in meaningfully."""
    return Violation(
        rule_id=rule_id,
        severity=severity,
        approver=approver,
        term_type="exclusivity",
        term_index=0,
        field="",
        actual=None,
        message="",
        rationale="",
    )


class TestDecide:
    def test_no_violation_approves(self) -> None:
        """No violation: APPROVE with nobody to sign."""
        assert (Decision.APPROVE, ()) == decide([])

    def test_warn_only_approves(self) -> None:
        """WARNs never stop approval and need no approver."""
        assert (Decision.APPROVE, ()) == decide(
            [violation(Severity.WARN, "deal_desk"), violation(Severity.WARN, "legal")]
        )

    def test_block_rejects(self) -> None:
        """Any BLOCK rejects, whatever else is there; BLOCK approvers are not listed."""
        assert (Decision.REJECT, ()) == decide([violation(Severity.BLOCK, "legal")])
        assert (Decision.REJECT, ("finance",)) == decide(
            [
                violation(Severity.WARN, "deal_desk"),
                violation(Severity.REVIEW, "finance"),
                violation(Severity.BLOCK, "legal"),
            ]
        )

    def test_review_needs_approval(self) -> None:
        """A REVIEW with no BLOCK needs approval by its approver."""
        assert (Decision.NEEDS_APPROVAL, ("legal",)) == decide(
            [violation(Severity.REVIEW, "legal"), violation(Severity.WARN, "deal_desk")]
        )

    def test_approvers_are_distinct_lowest_first(self) -> None:
        """Approvers are listed once each, deal_desk < finance < legal < executive."""
        violations = [
            violation(Severity.REVIEW, approver)
            for approver in ("executive", "legal", "deal_desk", "finance", "legal", "deal_desk")
        ]
        assert (
            Decision.NEEDS_APPROVAL,
            ("deal_desk", "finance", "legal", "executive"),
        ) == decide(violations)

    def test_decide_accepts_any_iterable(self) -> None:
        """`decide` reads its violations once, so a generator works."""
        generator = (violation(Severity.REVIEW, name) for name in ("legal", "finance"))
        assert (Decision.NEEDS_APPROVAL, ("finance", "legal")) == decide(generator)
