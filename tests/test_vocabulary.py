"""Tests of termdesk.vocabulary: the shipped vocabulary and checking packages against it."""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from termdesk.errors import PackageError, Problem
from termdesk.model import Money, Term, TermPackage
from termdesk.vocabulary import (
    FieldSpec,
    Limits,
    Vocabulary,
    check_package,
    default_vocabulary,
    load_vocabulary,
    suggest,
)

# DOMAIN.md section 2, written out: term type -> field -> type ("list[text]" for lists).
DOMAIN_TERMS: dict[str, dict[str, str]] = {
    "exclusivity": {
        "segments": "list[text]",
        "geographies": "list[text]",
        "use_cases": "list[text]",
        "duration_months": "int",
        "min_verified_activations": "int",
        "commitment_period_months": "int",
        "reversion": "enum",
        "audit_rights": "bool",
        "mutual": "bool",
    },
    "revenue_share": {
        "rate": "percent",
        "basis": "enum",
        "net_revenue_definition": "text",
        "first_term_rate": "percent",
        "renewal_rate": "percent",
    },
    "referral_fee": {
        "amount": "money",
        "qualified_referral_definition": "text",
        "acceptance_window_days": "int",
        "rejection_reason_codes": "bool",
    },
    "payment_terms": {
        "net_days": "int",
        "staged": "bool",
        "verification": "enum",
        "disputed_amount_cap": "money",
    },
    "partner_commitments": {
        "activation_plan": "bool",
        "named_owners": "bool",
        "weekly_reporting_days": "int",
    },
    "mfn": {
        "segments": "list[text]",
        "duration_months": "int",
        "economic_terms": "list[text]",
        "excludes_custom_enterprise": "bool",
    },
    "deal_registration": {
        "validity_days": "int",
        "max_renewals": "int",
        "evidence_required": "bool",
    },
    "territory": {
        "segments": "list[text]",
        "geographies": "list[text]",
        "objective_criteria": "list[text]",
        "conflict_rule": "enum",
    },
    "marketing_approval": {
        "response_business_days": "int",
        "deemed_approved": "bool",
        "brand_guide_required": "bool",
    },
    "data_sharing": {
        "data_fields": "list[text]",
        "purpose": "text",
        "includes_cohort_retention": "bool",
        "partner_provides_campaign_source": "bool",
        "joint_optimization_sessions": "bool",
    },
    "data_handling": {"standards": "list[text]"},
    "confidentiality": {"mutual": "bool", "years": "int"},
    "termination": {
        "notice_days": "int",
        "mutual": "bool",
        "cure_period_days": "int",
        "wind_down_days": "int",
    },
    "indemnity": {"mutual": "bool", "cap_multiple": "number"},
    "performance_guarantee": {"cap": "money", "tied_to_controllable_factors": "bool"},
    "tiered_incentive": {"tiers": "list[object]"},
    "shared_investment": {
        "split_percent": "number",
        "deliverable_owner": "text",
        "termination_treatment": "text",
    },
    "review_schedule": {"checkpoints_days": "list[int]", "quarterly_business_review": "bool"},
    "governance": {
        "executive_sponsor": "bool",
        "alliance_managers_named": "bool",
        "steering_committee_days": "int",
    },
    "escalation_path": {"levels": "list[text]", "business_days_per_level": "int"},
    "co_marketing": {"assets": "list[text]", "sessions": "int"},
    "enablement": {"assets": "list[text]", "sessions": "int"},
}

DOMAIN_CONTEXT: dict[str, str] = {
    "partner_type": "enum",
    "segment": "text",
    "region": "text",
    "strategic_importance": "enum",
    "interdependence": "enum",
    "time_horizon_months": "int",
    "agreement_months": "int",
    "annual_value": "money",
}

DOMAIN_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("context", "partner_type"): ("referral", "reseller", "technology", "strategic_alliance"),
    ("context", "strategic_importance"): ("low", "medium", "high"),
    ("context", "interdependence"): ("low", "medium", "high"),
    ("exclusivity", "reversion"): ("non_exclusive", "terminate", "none"),
    ("revenue_share", "basis"): ("gross", "net"),
    ("payment_terms", "verification"): (
        "none",
        "activation",
        "invoice_collection",
        "retention_milestone",
    ),
    ("territory", "conflict_rule"): ("first_registered_with_activity", "joint_review", "none"),
}

DEFAULT_LIMITS = Limits()

# Words that would leak Python into a message meant for a sales rep.
PYTHON_WORDS = ("int", "float", "str", "dict", "NoneType", "bool", "Decimal", "tuple")


def type_name(spec: FieldSpec) -> str:
    """A field's type as DOMAIN_TERMS writes it."""
    if spec.type == "list":
        assert spec.items is not None
        return f"list[{spec.items.type}]"
    return spec.type


def all_field_specs(vocabulary: Vocabulary) -> list[tuple[str, FieldSpec]]:
    """Every field of the vocabulary with a readable location, object fields included."""
    found: list[tuple[str, FieldSpec]] = [
        (f"context.{name}", spec) for name, spec in vocabulary.context.items()
    ]
    for term in vocabulary.terms.values():
        for name, spec in term.fields.items():
            found.append((f"{term.name}.{name}", spec))
            if spec.items is not None:
                found.extend(
                    (f"{term.name}.{name}.{sub}", sub_spec)
                    for sub, sub_spec in spec.items.fields.items()
                )
    return found


def problems_of(raw: object, limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """The problems check_package reports for `raw` (fails the test if there are none)."""
    with pytest.raises(PackageError) as caught:
        check_package(raw, default_vocabulary(), limits)
    return list(caught.value.problems)


def codes_of(raw: object, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    """The (path, code) of every problem check_package reports for `raw`."""
    return [(problem.path, problem.code) for problem in problems_of(raw, limits)]


def package(*terms: object, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A raw package with deal id `d-1`, the given terms and context."""
    raw: dict[str, Any] = {"deal_id": "d-1", "terms": list(terms)}
    if context is not None:
        raw["context"] = context
    return raw


def term(type_: str, **fields: Any) -> dict[str, Any]:
    """A raw term of type `type_` with the given fields."""
    return {"type": type_, "fields": fields}


def write(tmp_path: Path, text: str) -> Path:
    """Writes a vocabulary file and returns its path."""
    path = tmp_path / "vocabulary.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestShippedVocabulary:
    """The shipped `rulesets/vocabulary.yaml` holds DOMAIN.md section 2."""

    def test_has_every_term_type_with_its_fields_and_types(self) -> None:
        """Every term type of the domain, each field of it and each field's type are shipped."""
        vocabulary = default_vocabulary()
        actual = {
            name: {field: type_name(spec) for field, spec in term_spec.fields.items()}
            for name, term_spec in vocabulary.terms.items()
        }
        assert DOMAIN_TERMS == actual

    def test_has_every_context_field(self) -> None:
        """Every deal-context field of the domain is shipped with its type."""
        actual = {name: type_name(spec) for name, spec in default_vocabulary().context.items()}
        assert DOMAIN_CONTEXT == actual

    def test_enum_values_are_the_domain_values(self) -> None:
        """Each enum field allows exactly the values the domain lists, in that order."""
        vocabulary = default_vocabulary()
        actual = {
            (where.split(".")[0], spec.name): spec.values
            for where, spec in all_field_specs(vocabulary)
            if spec.type == "enum"
        }
        assert DOMAIN_ENUMS == actual

    def test_every_term_and_field_has_a_one_line_meaning(self) -> None:
        """A sales rep can read what each term type and field is for."""
        vocabulary = default_vocabulary()
        meanings = [(name, spec.meaning) for name, spec in vocabulary.terms.items()]
        meanings += [(where, spec.meaning) for where, spec in all_field_specs(vocabulary)]
        actual = [where for where, meaning in meanings if not meaning or "\n" in meaning]
        assert [] == actual

    def test_tiers_are_objects_of_threshold_and_rate(self) -> None:
        """A tiered incentive is a list of {threshold number >= 0, rate percent}."""
        tiers = default_vocabulary().terms["tiered_incentive"].fields["tiers"]
        assert tiers.items is not None
        actual = {name: (spec.type, spec.minimum) for name, spec in tiers.items.fields.items()}
        assert {"threshold": ("number", 0.0), "rate": ("percent", 0.0)} == actual

    def test_percent_fields_are_bounded_to_a_ratio(self) -> None:
        """Every percent field has bounds 0..1 even where the file does not write them."""
        actual = {
            (spec.minimum, spec.maximum)
            for _, spec in all_field_specs(default_vocabulary())
            if spec.type == "percent"
        }
        assert {(0.0, 1.0)} == actual

    def test_durations_and_counts_are_never_negative(self) -> None:
        """Every whole-number field of the shipped vocabulary has a minimum of 0."""
        actual = [
            where
            for where, spec in all_field_specs(default_vocabulary())
            if spec.type == "int" and spec.minimum != 0
        ]
        assert [] == actual

    def test_split_percent_is_between_0_and_100(self) -> None:
        """`split_percent` is a number from 0 to 100, not a ratio."""
        spec = default_vocabulary().terms["shared_investment"].fields["split_percent"]
        assert ("number", 0.0, 100.0) == (spec.type, spec.minimum, spec.maximum)

    def test_units(self) -> None:
        """Durations carry their unit."""
        vocabulary = default_vocabulary()
        actual = (
            vocabulary.terms["exclusivity"].fields["duration_months"].unit,
            vocabulary.terms["payment_terms"].fields["net_days"].unit,
            vocabulary.terms["marketing_approval"].fields["response_business_days"].unit,
            vocabulary.terms["revenue_share"].fields["rate"].unit,
            vocabulary.context["agreement_months"].unit,
        )
        assert ("months", "days", "business_days", "ratio", "months") == actual


class TestLoadVocabulary:
    """Loading vocabulary files."""

    def test_shipped_vocabulary_is_read_once(self) -> None:
        """The shipped vocabulary is cached: every caller gets the same object."""
        assert default_vocabulary() is load_vocabulary()

    def test_term_returns_none_for_an_unknown_type(self) -> None:
        """`Vocabulary.term` looks a type up by name."""
        vocabulary = default_vocabulary()
        assert ("exclusivity", None) == (
            getattr(vocabulary.term("exclusivity"), "name", None),
            vocabulary.term("exclusivty"),
        )

    def test_specs_cannot_be_changed(self) -> None:
        """The loaded specs are read-only, so a caller cannot alter the shared vocabulary."""
        terms: Any = default_vocabulary().terms
        with pytest.raises(TypeError):
            terms["exclusivity"] = None

    def test_loads_a_custom_file(self, tmp_path: Path) -> None:
        """A file given by path is read as written."""
        path = write(
            tmp_path,
            "context:\n"
            "  tier: {type: enum, values: [gold, silver], meaning: partner tier}\n"
            "terms:\n"
            "  rebate:\n"
            "    meaning: money back\n"
            "    fields:\n"
            "      rate: {type: percent, max: 0.5, unit: ratio, meaning: share returned}\n",
        )
        vocabulary = load_vocabulary(path)
        expected = FieldSpec(
            name="rate",
            type="percent",
            meaning="share returned",
            unit="ratio",
            minimum=0.0,
            maximum=0.5,
        )
        assert (("gold", "silver"), expected) == (
            vocabulary.context["tier"].values,
            vocabulary.terms["rebate"].fields["rate"],
        )

    @pytest.mark.parametrize(
        ("text", "key_path"),
        [
            ("terms: {x: {fields: {a: {type: integer}}}}", "terms.x.fields.a.type"),
            ("terms: {x: {fields: {a: {type: int, unit: 3}}}}", "terms.x.fields.a.unit"),
            ("terms: {x: {fields: {a: {type: enum}}}}", "terms.x.fields.a.values"),
            ("terms: {x: {fields: {a: {type: enum, values: [a, a]}}}}", "terms.x.fields.a.values"),
            ("terms: {x: {fields: {a: {type: list}}}}", "terms.x.fields.a.items"),
            (
                "terms: {x: {fields: {a: {type: list, items: {type: list}}}}}",
                "terms.x.fields.a.items.type",
            ),
            ("terms: {x: {fields: {a: {type: text, min: 0}}}}", "terms.x.fields.a.min"),
            ("terms: {x: {fields: {a: {type: int, min: low}}}}", "terms.x.fields.a.min"),
            ("terms: {x: {fields: {a: {type: int, min: 5, max: 1}}}}", "terms.x.fields.a.min"),
            ("terms: {x: {fields: {a: {type: int, meening: m}}}}", "terms.x.fields.a.meening"),
            ("terms: {x: {fields: {a: {type: percent, max: 30}}}}", "terms.x.fields.a"),
            ("terms: {x: {fields: {a: {type: object}}}}", "terms.x.fields.a.type"),
            ("terms: {x: {fields: {a: int}}}", "terms.x.fields.a"),
            ("terms: {x: {meaning: m}}", "terms.x.fields"),
            ("terms: {x: {fields: {}, extra: 1}}", "terms.x.extra"),
            ("terms: {Bad-Name: {fields: {}}}", "terms"),
            ("context: {a: {type: money}}\nterm: {}", "term"),
            ("context: {}", "terms"),
            ("- just a list", "(top level)"),
        ],
    )
    def test_malformed_file_names_the_key_path(
        self, tmp_path: Path, text: str, key_path: str
    ) -> None:
        """A malformed vocabulary raises ValueError naming where in the file it is wrong."""
        with pytest.raises(ValueError, match=r"vocabulary\.yaml: ") as caught:
            load_vocabulary(write(tmp_path, text))
        assert key_path == str(caught.value).split(": ")[1]

    def test_key_written_twice_is_refused(self, tmp_path: Path) -> None:
        """A field written twice would silently hide one of them, so it is an error."""
        text = "terms:\n  x:\n    fields:\n      a: {type: int}\n      a: {type: bool}\n"
        with pytest.raises(ValueError, match="key `a` appears twice"):
            load_vocabulary(write(tmp_path, text))

    def test_invalid_yaml_is_a_value_error(self, tmp_path: Path) -> None:
        """Broken YAML syntax is reported as a ValueError, like any other malformed file."""
        with pytest.raises(ValueError, match="not valid YAML"):
            load_vocabulary(write(tmp_path, "terms: {x: [\n"))


class TestSuggest:
    """Did-you-mean hints."""

    def test_close_name(self) -> None:
        """A misspelling gets the closest candidate."""
        assert "did you mean `duration_months`?" == suggest(
            "duration_month", ["duration_months", "segments"]
        )

    def test_nothing_close(self) -> None:
        """A name like nothing known gets no hint."""
        assert "" == suggest("zzz", ["duration_months", "segments"])


class TestCheckPackageNormalizes:
    """A valid package comes back with normalized values."""

    def test_valid_package(self) -> None:
        """Whole numbers become int, numbers float, money Money, lists tuples; nulls go."""
        raw = json.loads(
            """
            {"deal_id": "deal-42",
             "context": {"partner_type": "reseller", "agreement_months": 24.0, "region": null,
                         "annual_value": {"amount": "250000.00", "currency": "GBP"}},
             "terms": [
               {"type": "exclusivity",
                "fields": {"segments": ["mid-market healthcare"], "geographies": ["UK"],
                           "duration_months": 6.0, "min_verified_activations": 25,
                           "commitment_period_months": 6, "reversion": "non_exclusive",
                           "audit_rights": true, "mutual": null}},
               {"type": "revenue_share", "fields": {"rate": 0, "basis": "gross"}},
               {"type": "tiered_incentive",
                "fields": {"tiers": [{"threshold": 0, "rate": 0.1},
                                     {"threshold": 1000.5, "rate": 0.15, "rate": null}]}},
               {"type": "review_schedule", "fields": {"checkpoints_days": [30.0, 60, 90]}},
               {"type": "referral_fee", "fields": {"amount": {"amount": 500, "currency": "EUR"}}},
               {"type": "confidentiality"}
             ]}
            """
        )
        expected = TermPackage(
            deal_id="deal-42",
            context={
                "partner_type": "reseller",
                "agreement_months": 24,
                "annual_value": Money(Decimal("250000.00"), "GBP"),
            },
            terms=(
                Term(
                    "exclusivity",
                    {
                        "segments": ("mid-market healthcare",),
                        "geographies": ("UK",),
                        "duration_months": 6,
                        "min_verified_activations": 25,
                        "commitment_period_months": 6,
                        "reversion": "non_exclusive",
                        "audit_rights": True,
                    },
                ),
                Term("revenue_share", {"rate": 0.0, "basis": "gross"}),
                Term(
                    "tiered_incentive",
                    {"tiers": ({"threshold": 0.0, "rate": 0.1}, {"threshold": 1000.5})},
                ),
                Term("review_schedule", {"checkpoints_days": (30, 60, 90)}),
                Term("referral_fee", {"amount": Money(Decimal(500), "EUR")}),
                Term("confidentiality", {}),
            ),
        )
        assert expected == check_package(raw, default_vocabulary())

    def test_value_types_after_normalization(self) -> None:
        """An integral float becomes an int and a whole-number percent becomes a float."""
        checked = check_package(
            package(term("exclusivity", duration_months=12.0), term("revenue_share", rate=1)),
            default_vocabulary(),
        )
        actual = [type(value) for t in checked.terms for value in t.fields.values()]
        assert [int, float] == actual

    def test_money_amount_keeps_every_digit(self) -> None:
        """A money amount is an exact Decimal, never a binary float."""
        checked = check_package(
            package(context={"annual_value": {"amount": "0.10", "currency": "USD"}}),
            default_vocabulary(),
        )
        actual = checked.context["annual_value"]
        assert isinstance(actual, Money)
        assert ("0.10", "USD") == (str(actual.amount), actual.currency)

    def test_context_and_terms_are_optional(self) -> None:
        """A package with only a deal id is valid and empty."""
        assert TermPackage("d-1", {}, ()) == check_package({"deal_id": "d-1"}, default_vocabulary())

    def test_null_context_and_terms_are_empty(self) -> None:
        """`null` context and terms mean not set."""
        raw = {"deal_id": "d-1", "context": None, "terms": None}
        assert TermPackage("d-1", {}, ()) == check_package(raw, default_vocabulary())

    def test_same_type_twice_keeps_order(self) -> None:
        """Two grants of one term type are both kept, in the order sent."""
        raw = package(
            term("exclusivity", segments=["retail"]),
            term("confidentiality", years=3),
            term("exclusivity", segments=["banking"]),
        )
        actual = [(t.type, t.fields) for t in check_package(raw, default_vocabulary()).terms]
        assert [
            ("exclusivity", {"segments": ("retail",)}),
            ("confidentiality", {"years": 3}),
            ("exclusivity", {"segments": ("banking",)}),
        ] == actual

    def test_bounds_are_inclusive(self) -> None:
        """A value equal to a bound is accepted."""
        raw = package(
            term("shared_investment", split_percent=100),
            term("revenue_share", rate=1.0, renewal_rate=0.0),
            term("termination", notice_days=0),
        )
        actual = [dict(t.fields) for t in check_package(raw, default_vocabulary()).terms]
        assert [
            {"split_percent": 100.0},
            {"rate": 1.0, "renewal_rate": 0.0},
            {"notice_days": 0},
        ] == (actual)


class TestCheckPackageProblems:
    """Each kind of problem, with its stable code and exact path."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ([], [("", "not_an_object")]),
            ("deal", [("", "not_an_object")]),
            ({"deal_id": "d-1", "context": ["a"]}, [("context", "not_an_object")]),
            (package("exclusivity"), [("terms[0]", "not_an_object")]),
            (package({"type": "mfn", "fields": []}), [("terms[0].fields", "not_an_object")]),
            (
                package(term("tiered_incentive", tiers=[{"threshold": 1}, 5])),
                [("terms[0].fields.tiers[1]", "not_an_object")],
            ),
            ({"terms": []}, [("deal_id", "missing_key")]),
            ({"deal_id": ""}, [("deal_id", "missing_key")]),
            ({"deal_id": "   "}, [("deal_id", "missing_key")]),
            (package({"fields": {}}), [("terms[0].type", "missing_key")]),
            ({"deal_id": "d-1", "deal": "x"}, [("deal", "unknown_key")]),
            (package({"type": "mfn", "field": {}}), [("terms[0].field", "unknown_key")]),
            (package(term("exclusivityy")), [("terms[0].type", "unknown_term_type")]),
            (package(context={"segmnt": "x"}), [("context.segmnt", "unknown_field")]),
            (package(term("mfn", scope=["x"])), [("terms[0].fields.scope", "unknown_field")]),
            (
                package(term("tiered_incentive", tiers=[{"threshold": 1, "level": 2}])),
                [("terms[0].fields.tiers[0].level", "unknown_field")],
            ),
            ({"deal_id": 42}, [("deal_id", "wrong_type")]),
            ({"deal_id": "d-1", "terms": {}}, [("terms", "wrong_type")]),
            (package({"type": 3}), [("terms[0].type", "wrong_type")]),
            (
                package(term("payment_terms", net_days=12.5)),
                [("terms[0].fields.net_days", "wrong_type")],
            ),
            (
                package(term("payment_terms", net_days="30")),
                [("terms[0].fields.net_days", "wrong_type")],
            ),
            (
                package(term("payment_terms", net_days=True)),
                [("terms[0].fields.net_days", "wrong_type")],
            ),
            (
                package(term("indemnity", cap_multiple=False)),
                [("terms[0].fields.cap_multiple", "wrong_type")],
            ),
            (
                package(term("indemnity", cap_multiple=float("nan"))),
                [("terms[0].fields.cap_multiple", "wrong_type")],
            ),
            (package(term("payment_terms", staged=1)), [("terms[0].fields.staged", "wrong_type")]),
            (
                package(term("payment_terms", staged="true")),
                [("terms[0].fields.staged", "wrong_type")],
            ),
            (package(term("data_sharing", purpose=7)), [("terms[0].fields.purpose", "wrong_type")]),
            (package(term("revenue_share", basis=1)), [("terms[0].fields.basis", "wrong_type")]),
            (package(term("mfn", segments="retail")), [("terms[0].fields.segments", "wrong_type")]),
            (
                package(term("mfn", segments=["retail", None])),
                [("terms[0].fields.segments[1]", "wrong_type")],
            ),
            (
                package(term("tiered_incentive", tiers=[None])),
                [("terms[0].fields.tiers[0]", "not_an_object")],
            ),
            (
                package(term("review_schedule", checkpoints_days=[30, 45.5])),
                [("terms[0].fields.checkpoints_days[1]", "wrong_type")],
            ),
            (
                package(term("exclusivity", duration_months=-1)),
                [("terms[0].fields.duration_months", "out_of_range")],
            ),
            (package(term("revenue_share", rate=30)), [("terms[0].fields.rate", "out_of_range")]),
            (package(term("revenue_share", rate=-0.1)), [("terms[0].fields.rate", "out_of_range")]),
            (
                package(term("shared_investment", split_percent=100.5)),
                [("terms[0].fields.split_percent", "out_of_range")],
            ),
            (
                package(term("tiered_incentive", tiers=[{"threshold": 0, "rate": 1.5}])),
                [("terms[0].fields.tiers[0].rate", "out_of_range")],
            ),
            (
                package(term("review_schedule", checkpoints_days=[-30])),
                [("terms[0].fields.checkpoints_days[0]", "out_of_range")],
            ),
            (
                package(term("payment_terms", net_days=2**60)),
                [("terms[0].fields.net_days", "out_of_range")],
            ),
            (
                package(term("indemnity", cap_multiple=10**400)),
                [("terms[0].fields.cap_multiple", "out_of_range")],
            ),
            (
                package(context={"partner_type": "vendor"}),
                [("context.partner_type", "bad_enum_value")],
            ),
            (
                package(term("revenue_share", basis="Net")),
                [("terms[0].fields.basis", "bad_enum_value")],
            ),
            (
                package(term("data_sharing", purpose="x" * 2001)),
                [("terms[0].fields.purpose", "too_long")],
            ),
            ({"deal_id": "d" * 201}, [("deal_id", "too_long")]),
            (package(*[term("confidentiality")] * 101), [("terms", "too_many")]),
            (
                package(term("mfn", segments=["s"] * 101)),
                [("terms[0].fields.segments", "too_many")],
            ),
        ],
    )
    def test_code_and_path(self, raw: object, expected: list[tuple[str, str]]) -> None:
        """The problem carries its stable code and the exact path to the bad value."""
        assert expected == codes_of(raw)

    def test_missing_term_type_says_so(self) -> None:
        """A term without `type` is reported as a missing term type."""
        [problem] = problems_of(package({"fields": {"years": 3}}))
        assert ("terms[0].type", "missing_key", "the term type is missing") == (
            problem.path,
            problem.code,
            problem.message,
        )

    def test_unknown_term_type_skips_its_fields(self) -> None:
        """Fields of an unknown term type are not reported one by one on top of the type."""
        assert [("terms[0].type", "unknown_term_type")] == codes_of(
            package(term("nda", whatever=1, other="x"))
        )

    def test_unknown_field_with_null_is_still_reported(self) -> None:
        """A misspelled field is wrong even when its value is null."""
        assert [("terms[0].fields.yeers", "unknown_field")] == codes_of(
            package(term("confidentiality", yeers=None))
        )

    def test_field_put_beside_fields_is_pointed_inside(self) -> None:
        """A known field written next to `fields` gets a hint to move it inside."""
        [problem] = problems_of(package({"type": "confidentiality", "years": 3}))
        assert ("terms[0].years", "unknown_key", "put `years` inside `fields`") == (
            problem.path,
            problem.code,
            problem.help,
        )

    def test_wrong_type_message_speaks_plainly(self) -> None:
        """The message names the expected kind of value in plain words and quotes the value."""
        actual = [p.message for p in problems_of(package(term("payment_terms", net_days=12.5)))]
        assert ["`net_days` must be a whole number, not `12.5`"] == actual

    def test_percent_given_as_percentage_gets_the_ratio(self) -> None:
        """A rate of 30 is refused with the ratio 0.3 as the remedy."""
        [problem] = problems_of(package(term("revenue_share", rate=30)))
        assert (
            "`rate` must be a ratio between 0 and 1, not `30`",
            "a ratio, not a percentage: for 30% send `0.3`",
        ) == (problem.message, problem.help)

    def test_out_of_range_names_the_bound(self) -> None:
        """The message says which bound was crossed and shows the value as sent."""
        [problem] = problems_of(package(term("exclusivity", duration_months=-3.0)))
        assert ("`duration_months` must be at least 0, not `-3`", "send 0 or more") == (
            problem.message,
            problem.help,
        )

    def test_messages_follow_the_house_style(self) -> None:
        """Messages are lowercase, one line, without final period or Python type names."""
        raw = package(
            term("payment_terms", net_days="x", staged=3, verification=4, disputed_amount_cap=5),
            term("data_sharing", purpose=["x"], data_fields={"a": 1}),
            term("revenue_share", rate="high", basis=None),
            term("tiered_incentive", tiers=[None, 3]),
            term("referral_fee", amount={"amount": 1.5, "currency": "usd"}),
            term("mfn", segments="line\nbreak"),
            context={"annual_value": "100", "agreement_months": "24", "segment\nx": 1},
        )
        problems = problems_of(raw)
        bad = [
            p.message
            for p in problems
            if p.message != p.message[0].lower() + p.message[1:]
            or "\n" in p.message + p.help + p.path
            or p.message.endswith(".")
            or any(re.search(rf"\b{word}\b", p.message + p.help) for word in PYTHON_WORDS)
        ]
        assert (15, []) == (len(problems), bad)


class TestMoney:
    """Money is an object of a decimal-string amount and a currency code."""

    def test_float_amount_is_refused_with_a_string_remedy(self) -> None:
        """A float amount could have lost digits already, so it must be sent as a string."""
        [problem] = problems_of(
            package(context={"annual_value": {"amount": 1500.5, "currency": "USD"}})
        )
        assert (
            "context.annual_value.amount",
            "bad_money",
            'send the amount as a string, such as "1500.5", so that no digits are lost',
        ) == (problem.path, problem.code, problem.help)

    @pytest.mark.parametrize(
        "amount", ["NaN", "Infinity", "1e5", "1,500", "", " 15", "1_000", "12."]
    )
    def test_amount_must_be_a_plain_decimal_string(self, amount: str) -> None:
        """Only digits with an optional fraction are an amount: no NaN, exponent or separator."""
        raw = package(term("performance_guarantee", cap={"amount": amount, "currency": "USD"}))
        assert [("terms[0].fields.cap.amount", "bad_money")] == codes_of(raw)

    def test_infinite_float_amount_is_refused(self) -> None:
        """An infinite amount is not money."""
        raw = package(
            term("performance_guarantee", cap={"amount": float("inf"), "currency": "USD"})
        )
        assert [("terms[0].fields.cap.amount", "bad_money")] == codes_of(raw)

    def test_negative_amount_is_out_of_range(self) -> None:
        """A cap, fee or deal value is never negative."""
        raw = package(term("referral_fee", amount={"amount": "-5.00", "currency": "USD"}))
        assert [("terms[0].fields.amount.amount", "out_of_range")] == codes_of(raw)

    def test_lowercase_currency_gets_the_uppercase_code(self) -> None:
        """`usd` is refused with `USD` as the hint."""
        [problem] = problems_of(
            package(context={"annual_value": {"amount": "1", "currency": "usd"}})
        )
        assert ("context.annual_value.currency", "bad_money", "did you mean `USD`?") == (
            problem.path,
            problem.code,
            problem.help,
        )

    def test_missing_and_extra_keys(self) -> None:
        """Money has exactly `amount` and `currency`; each missing or extra key is reported."""
        raw = package(term("payment_terms", disputed_amount_cap={"value": "10"}))
        assert [
            ("terms[0].fields.disputed_amount_cap.value", "bad_money"),
            ("terms[0].fields.disputed_amount_cap.amount", "bad_money"),
            ("terms[0].fields.disputed_amount_cap.currency", "bad_money"),
        ] == codes_of(raw)

    def test_not_an_object_shows_the_format(self) -> None:
        """A bare number for money is refused with the money format as the remedy."""
        [problem] = problems_of(package(context={"annual_value": 1500}))
        assert (
            "context.annual_value",
            "bad_money",
            '{"amount": "1500.00", "currency": "USD"}',
        ) == (
            problem.path,
            problem.code,
            problem.help,
        )


class TestDidYouMean:
    """Misspellings get the right name as help."""

    def test_misspelled_field(self) -> None:
        """A field one letter off is suggested."""
        [problem] = problems_of(package(term("exclusivity", duration_month=12)))
        assert ("terms[0].fields.duration_month", "did you mean `duration_months`?") == (
            problem.path,
            problem.help,
        )

    def test_misspelled_term_type(self) -> None:
        """A term type one letter off is suggested."""
        [problem] = problems_of(package(term("exclusivty")))
        assert ("unknown term type `exclusivty`", "did you mean `exclusivity`?") == (
            problem.message,
            problem.help,
        )

    def test_misspelled_enum_value(self) -> None:
        """An enum value close to an allowed one is suggested."""
        [problem] = problems_of(package(term("exclusivity", reversion="non-exclusive")))
        assert ("bad_enum_value", "did you mean `non_exclusive`?") == (problem.code, problem.help)

    def test_enum_value_unlike_any_lists_the_allowed_values(self) -> None:
        """With nothing close, the help lists every allowed value."""
        [problem] = problems_of(package(term("revenue_share", basis="blended")))
        assert "allowed values: `gross`, `net`" == problem.help

    def test_misspelled_context_field(self) -> None:
        """Context fields get the same hint."""
        [problem] = problems_of(package(context={"agreement_month": 24}))
        assert ("unknown_field", "did you mean `agreement_months`?") == (problem.code, problem.help)


class TestSeveralProblems:
    """Every problem is reported at once, never only the first."""

    def test_all_problems_in_one_error(self) -> None:
        """Problems across the deal id, context, terms and fields come together, in order."""
        raw = {
            "context": {"partner_type": "resellr", "segmnt": "x"},
            "terms": [
                term("exclusivity", duration_months="6", audit_rights="yes"),
                term("revenue_shar"),
                term("revenue_share", rate=0.5, basis="gross", renewal_rate=2),
            ],
            "extra": True,
        }
        assert [
            ("extra", "unknown_key"),
            ("deal_id", "missing_key"),
            ("context.partner_type", "bad_enum_value"),
            ("context.segmnt", "unknown_field"),
            ("terms[0].fields.duration_months", "wrong_type"),
            ("terms[0].fields.audit_rights", "wrong_type"),
            ("terms[1].type", "unknown_term_type"),
            ("terms[2].fields.renewal_rate", "out_of_range"),
        ] == codes_of(raw)

    def test_error_text_lists_every_problem(self) -> None:
        """The exception text joins every problem, so a log line shows them all."""
        with pytest.raises(PackageError) as caught:
            check_package(
                package(term("mfn", duration_months=-1, segments=7)), default_vocabulary()
            )
        assert (
            "terms[0].fields.duration_months: `duration_months` must be at least 0, not `-1` "
            "(help: send 0 or more); terms[0].fields.segments: `segments` must be a list, "
            "not `7`"
        ) == str(caught.value)

    def test_every_bad_list_item_is_reported(self) -> None:
        """Each bad item of a list is reported with its own index."""
        raw = package(term("escalation_path", levels=["working", 1, "executive", 2]))
        assert [
            ("terms[0].fields.levels[1]", "wrong_type"),
            ("terms[0].fields.levels[3]", "wrong_type"),
        ] == codes_of(raw)


class TestLimits:
    """Size limits bound the work one package can ask for."""

    def test_terms_at_the_limit_are_accepted(self) -> None:
        """Exactly `max_terms` terms is fine."""
        raw = package(*[term("confidentiality")] * 3)
        checked = check_package(raw, default_vocabulary(), Limits(max_terms=3))
        assert 3 == len(checked.terms)

    def test_too_many_terms(self) -> None:
        """One term over the limit is refused with one problem, not one per term."""
        [problem] = problems_of(package(*[term("nda")] * 4), Limits(max_terms=3))
        assert (
            "terms",
            "too_many",
            "the package has 4 terms, more than the limit of 3",
        ) == (problem.path, problem.code, problem.message)

    def test_too_long_text(self) -> None:
        """Text over `max_text_length` is refused, naming its length and the limit."""
        [problem] = problems_of(
            package(term("shared_investment", deliverable_owner="abcdef")),
            Limits(max_text_length=5),
        )
        assert (
            "terms[0].fields.deliverable_owner",
            "too_long",
            "`deliverable_owner` is 6 characters long, more than the limit of 5",
        ) == (problem.path, problem.code, problem.message)

    def test_too_long_list_item_text(self) -> None:
        """The text limit applies to each text item of a list."""
        raw = package(term("data_handling", standards=["GDPR", "SOC 2 type II"]))
        assert [("terms[0].fields.standards[1]", "too_long")] == codes_of(
            raw, Limits(max_text_length=5)
        )

    def test_too_many_list_items(self) -> None:
        """A list over `max_list_items` is refused as a whole."""
        [problem] = problems_of(
            package(term("territory", geographies=["UK", "FR", "DE"])), Limits(max_list_items=2)
        )
        assert (
            "terms[0].fields.geographies",
            "too_many",
            "`geographies` has 3 items, more than the limit of 2",
        ) == (problem.path, problem.code, problem.message)

    def test_too_long_deal_id(self) -> None:
        """The deal id has its own length limit."""
        assert [("deal_id", "too_long")] == codes_of(
            {"deal_id": "abcd"}, Limits(max_deal_id_length=3)
        )

    def test_long_values_are_shortened_in_messages(self) -> None:
        """A huge bad value does not make a huge message."""
        [problem] = problems_of(package(term("revenue_share", basis="x" * 10_000)))
        assert len(problem.message) < 120
