"""Tests of termdesk.explain: what an explanation says about rules that read other terms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from termdesk.catalog import DEFAULT_RULESET, find_ruleset
from termdesk.evaluator import Evaluator
from termdesk.explain import RuleExplanation, explain
from termdesk.vocabulary import check_package, default_vocabulary


@pytest.fixture(scope="module")
def evaluator() -> Iterator[Evaluator]:
    evaluator = Evaluator(find_ruleset(DEFAULT_RULESET))
    yield evaluator
    evaluator.close()


def explained(evaluator: Evaluator, raw: dict[str, Any]) -> dict[tuple[str, int], RuleExplanation]:
    package = check_package(raw, default_vocabulary())
    explanations = explain(evaluator, package, evaluator.matches(package))
    return {(e.rule_id, e.term_index): e for e in explanations}


class TestExplain:
    def test_values_of_other_terms_are_listed(self, evaluator: Evaluator) -> None:
        """A rule that looks for another term lists that term's fields by type and index."""
        explanations = explained(
            evaluator,
            {
                "deal_id": "first-term",
                "terms": [
                    {"type": "revenue_share", "fields": {"rate": 0.2, "first_term_rate": 0.25}},
                    {
                        "type": "partner_commitments",
                        "fields": {"activation_plan": True, "weekly_reporting_days": 2},
                    },
                ],
            },
        )
        first_term = explanations["revenue-share.first-term-commitments", 0]
        assert {
            "first_term_rate": 0.25,
            "rate": 0.2,
            "partner_commitments[1].activation_plan": True,
            "partner_commitments[1].named_owners": None,
            "partner_commitments[1].weekly_reporting_days": 2,
        } == dict(first_term.values)
        assert (True, False, True) == (
            first_term.when_held,
            first_term.require_held,
            first_term.violated,
        )

    def test_rule_on_an_absent_term(self, evaluator: Evaluator) -> None:
        """A rule whose term is absent did not apply: a note, and `when` held only if empty."""
        explanations = explained(evaluator, {"deal_id": "empty", "terms": []})
        no_mfn = explanations["mfn.narrowed", -1]
        assert "the package has no `mfn` term" == no_mfn.note
        assert (True, True, False) == (no_mfn.when_held, no_mfn.require_held, no_mfn.violated)
        no_fast_payment = explanations["payment.fast-payment-trade", -1]
        assert (False, True) == (no_fast_payment.when_held, no_fast_payment.require_held)
