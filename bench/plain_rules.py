"""The 34 rules of partner-alliance written by hand as plain Python: the benchmark's baseline.

    python bench/plain_rules.py [--packages 3000] [--seed 12]

`violations(package, params)` is what a developer would write without termdesk: the rules
of rulesets/partner-alliance/ruleset.yaml as `if` statements over the package as plain
JSON data (`termdesk.jsonview.package_json` of a checked package: ints as ints, percents as
floats, money as `{"amount", "currency"}`), with no interpreter, no engine and no fact
projection. One pass groups the terms by type, then each rule reads its own terms. The
thresholds come from `params` (`ruleset.parameters`); the literals written in the rules
themselves (`>= 1`, `'non_exclusive'`) are written here too.

It follows the ruleset language: a comparison with an absent field is false, empty (or
blank) text and empty lists are absent, `count()` of an absent list is 0 and
`ascending()` of an absent list is true.

It must find exactly what the engine finds. Run as a script, it checks that it does,
against `Evaluator.matches` on every test case of the ruleset and on generated packages
(seeded; numbers around the thresholds, repeated term types, context fields), prints the
first differences and exits 1 on any, or when some rule never fired (a blind generator).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from termdesk.catalog import find_ruleset
from termdesk.evaluator import Evaluator
from termdesk.jsonview import package_json
from termdesk.model import TermPackage
from termdesk.vocabulary import FieldSpec, check_package, default_vocabulary

__all__ = ["RULE_IDS", "violations"]

Fields = Mapping[str, Any]

RULE_IDS = (
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
)

_FAST_PAYMENT_VERIFICATIONS = frozenset({"activation", "invoice_collection", "retention_milestone"})


def _filled(text: str | None) -> bool:
    """present() of a text field: blank text counts as absent."""
    return text is not None and text.strip() != ""


def _ordered(items: Sequence[Fields] | None, key: str, *, strict: bool) -> bool:
    """ascending() / non_decreasing() of `key` over a list of objects; an absent list is."""
    if items is None:
        return True
    previous: float | None = None
    for item in items:
        number = item.get(key)
        if number is None or isinstance(number, bool):
            return False
        if previous is not None and (number <= previous if strict else number < previous):
            return False
        previous = number
    return True


def violations(  # noqa: PLR0915 (one function, like the hand-written code it stands for)
    package: Mapping[str, Any], params: Mapping[str, Any]
) -> set[tuple[str, int]]:
    """(rule id, term index) of every violation; term index -1 for the deal-level rules."""
    by_type: dict[str, list[tuple[int, Fields]]] = {}
    for index, term in enumerate(package["terms"]):
        group = by_type.get(term["type"])
        if group is None:
            by_type[term["type"]] = [(index, term["fields"])]
        else:
            group.append((index, term["fields"]))
    context: Fields = package["context"]
    found: set[tuple[str, int]] = set()
    add = found.add
    terms_of = by_type.get

    # --- exclusivity -------------------------------------------------------------------
    group = terms_of("exclusivity")
    if group:
        max_segments = params["max_exclusive_segments"]
        max_geographies = params["max_exclusive_geographies"]
        max_months = params["max_exclusivity_months"]
        for index, fields in group:
            segments = len(fields.get("segments") or ())
            geographies = len(fields.get("geographies") or ())
            if not (segments or geographies or fields.get("use_cases")):
                add(("exclusivity.scope-required", index))
            if segments > max_segments or geographies > max_geographies:
                add(("exclusivity.scope-narrow", index))
            duration = fields.get("duration_months")
            if duration is None or duration > max_months:
                add(("exclusivity.time-limit", index))
            activations = fields.get("min_verified_activations")
            period = fields.get("commitment_period_months")
            if (
                activations is None
                or activations < 1
                or period is None
                or duration is None
                or period > duration
            ):
                add(("exclusivity.performance-commitment", index))
            if fields.get("reversion") != "non_exclusive":
                add(("exclusivity.automatic-reversion", index))
            if not fields.get("audit_rights"):
                add(("exclusivity.audit-rights", index))
            if fields.get("mutual") is False:
                add(("mutuality.exclusivity", index))

    # --- payment -----------------------------------------------------------------------
    revenue_shares = terms_of("revenue_share")
    group = terms_of("payment_terms")
    if group:
        standard_days = params["standard_net_days"]
        min_days = params["min_net_days"]
        cheap_share: bool | None = None  # some revenue share at the reduced rate, once
        for index, fields in group:
            net_days = fields.get("net_days")
            if net_days is None or net_days < min_days:
                add(("payment.minimum-net-days", index))
            if (
                net_days is not None
                and net_days < standard_days
                and fields.get("verification") not in _FAST_PAYMENT_VERIFICATIONS
                and not fields.get("staged")
                and fields.get("disputed_amount_cap") is None
            ):
                if cheap_share is None:
                    reduced = params["reduced_rate_for_fast_payment"]
                    cheap_share = any(
                        (rate := share.get("rate")) is not None and rate <= reduced
                        for _, share in revenue_shares or ()
                    )
                if not cheap_share:
                    add(("payment.fast-payment-trade", index))

    # --- revenue share -----------------------------------------------------------------
    if revenue_shares:
        standard_share = params["standard_max_share"]
        hard_share = params["hard_max_share"]
        committed: bool | None = None  # partner commitments strong enough, once
        for index, fields in revenue_shares:
            basis = fields.get("basis")
            if basis is None or (
                basis == "net" and not _filled(fields.get("net_revenue_definition"))
            ):
                add(("revenue-share.basis-defined", index))
            rate = fields.get("rate")
            if rate is not None:
                if rate > standard_share:
                    add(("revenue-share.rate-ceiling", index))
                if rate > hard_share:
                    add(("revenue-share.rate-hard-cap", index))
                renewal = fields.get("renewal_rate")
                if renewal is not None and renewal > rate:
                    add(("revenue-share.renewal-step-down", index))
                first_term = fields.get("first_term_rate")
                if first_term is not None and first_term > rate:
                    if committed is None:
                        reporting_days = params["min_commitment_reporting_days"]
                        committed = any(
                            commitments.get("activation_plan")
                            and commitments.get("named_owners")
                            and (days := commitments.get("weekly_reporting_days")) is not None
                            and days >= reporting_days
                            for _, commitments in terms_of("partner_commitments") or ()
                        )
                    if not committed:
                        add(("revenue-share.first-term-commitments", index))
            elif fields.get("renewal_rate") is not None:
                add(("revenue-share.renewal-step-down", index))

    # --- MFN, registration, territory --------------------------------------------------
    group = terms_of("mfn")
    if group:
        max_mfn_months = params["max_mfn_months"]
        for index, fields in group:
            duration = fields.get("duration_months")
            if not fields.get("excludes_custom_enterprise") or not (
                fields.get("segments")
                or (duration is not None and duration <= max_mfn_months)
                or fields.get("economic_terms")
            ):
                add(("mfn.narrowed", index))

    group = terms_of("deal_registration")
    if group:
        max_validity = params["max_registration_validity_days"]
        max_renewals = params["max_registration_renewals"]
        for index, fields in group:
            validity = fields.get("validity_days")
            renewals = fields.get("max_renewals")
            if (
                validity is None
                or validity > max_validity
                or renewals is None
                or renewals > max_renewals
                or not fields.get("evidence_required")
            ):
                add(("deal-registration.window", index))

    for index, fields in terms_of("territory") or ():
        conflict_rule = fields.get("conflict_rule")
        if not fields.get("objective_criteria") or conflict_rule is None or conflict_rule == "none":
            add(("territory.objective-criteria", index))

    # --- marketing ---------------------------------------------------------------------
    group = terms_of("marketing_approval")
    if group:
        max_response = params["max_marketing_response_days"]
        for index, fields in group:
            response = fields.get("response_business_days")
            if response is None or response > max_response:
                add(("marketing.approval-sla", index))
            if fields.get("deemed_approved") and not fields.get("brand_guide_required"):
                add(("marketing.deemed-approval-brand-guide", index))

    # --- data --------------------------------------------------------------------------
    group = terms_of("data_sharing")
    if group:
        handled = "data_handling" in by_type
        for index, fields in group:
            if not _filled(fields.get("purpose")):
                add(("data-sharing.minimum-necessary", index))
            if fields.get("includes_cohort_retention") and not (
                fields.get("partner_provides_campaign_source")
                and fields.get("joint_optimization_sessions")
            ):
                add(("data-sharing.reciprocity", index))
            if not handled:
                add(("data-sharing.handling-terms", index))

    # --- mutuality ---------------------------------------------------------------------
    group = terms_of("termination")
    if group:
        min_cure = params["min_cure_period_days"]
        for index, fields in group:
            if fields.get("mutual") is False:
                cure = fields.get("cure_period_days")
                if cure is None or cure < min_cure:
                    add(("mutuality.termination", index))
    for index, fields in terms_of("indemnity") or ():
        if fields.get("mutual") is False:
            add(("mutuality.indemnity", index))
    for index, fields in terms_of("confidentiality") or ():
        if fields.get("mutual") is False:
            add(("mutuality.confidentiality", index))

    # --- referrals, guarantees, incentives, investment ---------------------------------
    group = terms_of("referral_fee")
    if group:
        max_acceptance = params["max_referral_acceptance_days"]
        for index, fields in group:
            if not (
                _filled(fields.get("qualified_referral_definition"))
                and fields.get("rejection_reason_codes")
            ):
                add(("referral.qualified-definition", index))
            window = fields.get("acceptance_window_days")
            if window is None or window > max_acceptance:
                add(("referral.acceptance-window", index))

    for index, fields in terms_of("performance_guarantee") or ():
        if fields.get("cap") is None or not fields.get("tied_to_controllable_factors"):
            add(("guarantee.capped", index))

    for index, fields in terms_of("tiered_incentive") or ():
        tiers = fields.get("tiers")
        if not (
            _ordered(tiers, "threshold", strict=True) and _ordered(tiers, "rate", strict=False)
        ):
            add(("tiers.monotonic", index))

    for index, fields in terms_of("shared_investment") or ():
        if not (
            _filled(fields.get("deliverable_owner"))
            and _filled(fields.get("termination_treatment"))
        ):
            add(("shared-investment.ownership", index))

    # --- the deal as a whole -----------------------------------------------------------
    agreement_months = context.get("agreement_months")
    if (
        revenue_shares
        or "tiered_incentive" in by_type
        or (
            agreement_months is not None
            and agreement_months > params["review_after_agreement_months"]
        )
    ) and not any(
        fields.get("checkpoints_days") or fields.get("quarterly_business_review")
        for _, fields in terms_of("review_schedule") or ()
    ):
        add(("governance.review-points", -1))

    importance = context.get("strategic_importance")
    if context.get("partner_type") == "strategic_alliance" or (
        importance == "high"
        and context.get("interdependence") == "high"
        and (horizon := context.get("time_horizon_months")) is not None
        and horizon >= params["min_alliance_horizon_months"]
    ):
        min_wind_down = params["min_wind_down_days"]
        if not (
            any(
                fields.get("executive_sponsor") and fields.get("alliance_managers_named")
                for _, fields in terms_of("governance") or ()
            )
            and any(
                (days := fields.get("wind_down_days")) is not None and days >= min_wind_down
                for _, fields in terms_of("termination") or ()
            )
        ):
            add(("alliance.governance", -1))

    if importance == "high" and "escalation_path" not in by_type:
        add(("alliance.escalation-path", -1))

    if "confidentiality" not in by_type:
        add(("must-have.confidentiality", -1))
    return found


# --- the self-test: the same answers as the engine ---------------------------------------


def _number_pool(params: Mapping[str, Any]) -> tuple[list[int], list[float]]:
    """Whole numbers and ratios around every threshold of the ruleset."""
    whole = {0, 1, 2, 3}
    ratios = {0.0, 0.05, 0.5, 1.0}
    for value in params.values():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, int):
            whole.update((value - 1, value, value + 1))
        else:
            ratios.update((value - 0.01, value, value + 0.01))
    return sorted(whole), sorted(ratios)


class _Generator:
    """Random raw packages from the vocabulary, with numbers near the thresholds."""

    def __init__(self, seed: int, params: Mapping[str, Any]) -> None:
        self.random = random.Random(seed)
        self.vocabulary = default_vocabulary()
        self.whole, self.ratios = _number_pool(params)
        self.types = sorted(self.vocabulary.terms)

    def package(self, number: int) -> dict[str, Any]:
        pick = self.random
        # A few types per package, drawn several times: repeated types are common.
        favourites = pick.sample(self.types, pick.randint(1, 8))
        if pick.random() < 0.7:
            favourites.append("confidentiality")
        terms = [
            {"type": kind, "fields": self.fields(self.vocabulary.terms[kind].fields)}
            for kind in pick.choices(favourites, k=pick.randint(0, 10))
        ]
        return {
            "deal_id": f"random-{number}",
            "context": self.fields(self.vocabulary.context),
            "terms": terms,
        }

    def fields(self, specs: Mapping[str, FieldSpec]) -> dict[str, Any]:
        present = self.random.random()
        return {
            name: self.value(spec) for name, spec in specs.items() if self.random.random() < present
        }

    def value(self, spec: FieldSpec) -> Any:
        pick = self.random
        low = -float("inf") if spec.minimum is None else spec.minimum
        high = float("inf") if spec.maximum is None else spec.maximum
        if spec.type == "int":
            return pick.choice([n for n in self.whole if low <= n <= high])
        if spec.type in ("number", "percent"):
            pool = self.ratios if spec.type == "percent" else self.ratios + self.whole
            return pick.choice([n for n in pool if low <= n <= high])
        if spec.type == "bool":
            return pick.random() < 0.6
        if spec.type == "text":
            return pick.choice(["", "  ", "x", "gross less refunds", "mid-market healthcare"])
        if spec.type == "enum":
            return pick.choice(spec.values)
        if spec.type == "money":
            return {"amount": pick.choice(["0", "1500.00", "250000.00"]), "currency": "USD"}
        if spec.type == "list":
            assert spec.items is not None
            return [self.value(spec.items) for _ in range(pick.choice([0, 0, 1, 1, 2, 3, 4]))]
        if spec.type == "object":
            return self.fields(spec.fields) if pick.random() < 0.2 else self.whole_item(spec)
        raise AssertionError(spec.type)

    def whole_item(self, spec: FieldSpec) -> dict[str, Any]:
        return {name: self.value(field) for name, field in spec.fields.items()}


def _cases(
    packages: int, seed: int, params: Mapping[str, Any]
) -> Iterator[tuple[str, TermPackage]]:
    """(name, checked TermPackage): the ruleset's test cases, then generated packages."""
    for case in find_ruleset("partner-alliance").tests:
        yield f"test case {case.name!r}", case.package
    generator = _Generator(seed, params)
    vocabulary = default_vocabulary()
    for number in range(packages):
        raw = generator.package(number)
        yield f"generated {raw['deal_id']}", check_package(raw, vocabulary)


def main() -> int:
    parser = argparse.ArgumentParser(description="plain_rules.violations against the engine")
    parser.add_argument("--packages", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=12)
    arguments = parser.parse_args()

    ruleset = find_ruleset("partner-alliance")
    assert tuple(rule.id for rule in ruleset.rules) == RULE_IDS, "the ruleset's rules changed"
    params = ruleset.parameters
    evaluator = Evaluator(ruleset)
    checked = differ = 0
    fired = dict.fromkeys(RULE_IDS, 0)
    try:
        for name, package in _cases(arguments.packages, arguments.seed, params):
            plain_package = package_json(package)
            engine = {(ruleset.rules[r].id, t) for r, t in evaluator.matches(package)}
            plain = violations(plain_package, params)
            checked += 1
            for rule_id in {rule_id for rule_id, _ in engine}:
                fired[rule_id] += 1
            if plain != engine:
                differ += 1
                if differ <= 5:
                    print(f"DIFFERS: {name}\n  package: {plain_package}")
                    print(f"  engine only: {sorted(engine - plain)}")
                    print(f"  plain only:  {sorted(plain - engine)}")
    finally:
        evaluator.close()
    silent = [rule_id for rule_id, count in fired.items() if count == 0]
    tests = len(ruleset.tests)
    print(
        f"{checked} packages ({tests} test cases, {checked - tests} generated, "
        f"seed {arguments.seed}), {differ} differ"
    )
    print(
        f"rules that fired: {len(RULE_IDS) - len(silent)} of {len(RULE_IDS)}"
        + (f" (never: {', '.join(silent)})" if silent else "")
        + f"; packages per rule: min {min(fired.values())}, max {max(fired.values())}"
    )
    return 1 if differ or silent else 0


if __name__ == "__main__":
    sys.exit(main())
