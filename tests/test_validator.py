"""Tests of termdesk.ruleset.validator: the diagnostics a policy owner gets for a ruleset.

Each test writes a small ruleset inline: `rule_yaml` makes one valid rule and lets the test
change or drop one key, `document` wraps rules (and test cases) in a minimal valid ruleset.
Lines and columns are found in the text itself, so the expectations say "the line where
the typo is" rather than a number that moves when the helper changes.
"""

# House style (shared STYLE.md) writes `assert expected == actual`; ruff calls that Yoda.

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from termdesk.catalog import DEFAULT_RULESET, RULESET_FILE
from termdesk.paths import shipped_rulesets_dir
from termdesk.ruleset.conditions import (
    Absent,
    AllOf,
    AnyOf,
    Compare,
    Const,
    Count,
    Field,
    LeafSyntaxError,
    Matches,
    NoneOf,
    Not,
    NoTerm,
    OneOf,
    Present,
    RawCall,
    RawLeaf,
    RawList,
    RawLiteral,
    RawParam,
    RawRef,
    TermExists,
    parse_leaf,
    to_nnf,
)
from termdesk.ruleset.diagnostics import Diagnostic
from termdesk.ruleset.validator import ValidationResult, validate_source

FILE = "rulesets/demo/ruleset.yaml"

HEAD = """\
name: demo
description: a ruleset written for one test
version: 1
parameters:
  max_exclusivity_months: {value: 12, description: "longest exclusivity"}
  default_min_activations: 25
buckets:
  must_have: [confidentiality]
  tradable: [exclusivity]
rules:
"""

BASE_RULE: dict[str, str] = {
    "id": "exclusivity.time-limit",
    "term": "exclusivity",
    "require": "duration_months <= $max_exclusivity_months",
    "severity": "BLOCK",
    "approver": "legal",
    "message": '"exclusivity lasts {duration_months|an unlimited number of} months"',
    "rationale": "exclusivity must end on its own",
}


def rule_yaml(**changes: str | None) -> str:
    """One rule as a YAML list item: `BASE_RULE` with `changes` (None drops the key).

    Values are raw YAML written after `key: `; a multi-line value starts with a newline and
    carries its own indentation.
    """
    fields = {**BASE_RULE, **changes}
    lines: list[str] = []
    for key, value in fields.items():
        if value is None:
            continue
        prefix = "    " if lines else "  - "
        lines.append(
            f"{prefix}{key}: {value}" if not value.startswith("\n") else f"{prefix}{key}:{value}"
        )
    return "\n".join(lines) + "\n"


def document(*rules: str, tests: str = "") -> str:
    """A minimal ruleset holding `rules` (the base rule when none) and a `tests:` section."""
    body = HEAD + "".join(rules or (rule_yaml(),))
    return body + (f"tests:\n{tests}" if tests else "")


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line that contains `needle`."""
    found = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) >= occurrence, f"`{needle}` is not in the text {occurrence} time(s)"
    return found[occurrence - 1]


def column_of(text: str, needle: str) -> int:
    """The 1-based column of `needle` on the first line that contains it."""
    line = text.splitlines()[line_of(text, needle) - 1]
    return line.index(needle) + 1


def validate(text: str) -> ValidationResult:
    return validate_source(text, FILE)


def only_diagnostic(text: str) -> Diagnostic:
    """The one diagnostic of `text`; fails when there is none or more than one."""
    result = validate(text)
    assert [d.code for d in result.diagnostics] != [], "expected a diagnostic, got none"
    assert len(result.diagnostics) == 1, "\n".join(str(d) for d in result.diagnostics)
    assert result.ruleset is None
    return result.diagnostics[0]


def with_code(text: str, code: str) -> Diagnostic:
    """The one diagnostic of `text` with `code` (others may exist)."""
    matching = [d for d in validate(text).diagnostics if d.code == code]
    assert len(matching) == 1, f"expected one `{code}`, got {[str(d) for d in matching]}"
    return matching[0]


class TestMinimalDocument:
    def test_helper_document_is_valid(self) -> None:
        """The helper's minimal ruleset validates cleanly, so each change below is the cause."""
        result = validate(document())
        assert () == result.diagnostics
        assert result.ruleset is not None
        assert ("exclusivity.time-limit",) == tuple(rule.id for rule in result.ruleset.rules)

    def test_shipped_ruleset_has_no_diagnostic(self) -> None:
        """The shipped default ruleset validates with no error and no warning at all."""
        path = shipped_rulesets_dir() / DEFAULT_RULESET / RULESET_FILE
        result = validate_source(path.read_text(encoding="utf-8"), str(path))
        assert [] == [str(d) for d in result.diagnostics]
        assert result.ruleset is not None
        assert DEFAULT_RULESET == result.ruleset.name
        descriptions = result.ruleset.parameter_descriptions
        assert set(result.ruleset.parameters) == set(descriptions)
        assert (
            "longest exclusivity without re-negotiation" == descriptions["max_exclusivity_months"]
        )


class TestNames:
    def test_field_typo_suggests_the_field(self) -> None:
        """A misspelled field gets unknown_field at its place, with "did you mean"."""
        text = document(rule_yaml(require="duration_month <= $max_exclusivity_months"))
        diagnostic = only_diagnostic(text)
        assert "unknown_field" == diagnostic.code
        assert FILE == diagnostic.file
        assert line_of(text, "duration_month <=") == diagnostic.line
        assert column_of(text, "duration_month <=") == diagnostic.column
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "did you mean `duration_months`?" == diagnostic.help
        assert "`duration_month`" in diagnostic.message

    def test_unknown_parameter_suggests_the_parameter(self) -> None:
        """A misspelled `$parameter` gets unknown_parameter pointing at the `$`."""
        text = document(rule_yaml(require="duration_months <= $max_exclusivity_month"))
        diagnostic = only_diagnostic(text)
        assert "unknown_parameter" == diagnostic.code
        assert line_of(text, "$max_exclusivity_month") == diagnostic.line
        assert column_of(text, "$max_exclusivity_month") == diagnostic.column
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "did you mean `max_exclusivity_months`?" == diagnostic.help

    def test_unknown_parameter_without_close_name_says_where_to_declare(self) -> None:
        """With no close parameter name, help says to declare it under `parameters:`."""
        text = document(rule_yaml(require="duration_months <= $zzz"))
        diagnostic = only_diagnostic(text)
        assert "unknown_parameter" == diagnostic.code
        assert "parameters:" in diagnostic.help

    def test_duplicate_rule_id_names_the_first_line(self) -> None:
        """A second rule with the same id is reported at its id; help names the first line."""
        first = rule_yaml()
        second = rule_yaml(require="reversion == 'non_exclusive'", message='"x"')
        text = document(first, second)
        diagnostic = only_diagnostic(text)
        assert "duplicate_rule_id" == diagnostic.code
        assert line_of(text, "- id: exclusivity.time-limit", 2) == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id
        first_line = line_of(text, "- id: exclusivity.time-limit", 1)
        assert f"at line {first_line}" in diagnostic.help

    def test_unknown_term_type_suggests_the_type(self) -> None:
        """A misspelled `term:` gets unknown_term_type with "did you mean"."""
        text = document(rule_yaml(term="exclusivty"))
        diagnostic = only_diagnostic(text)
        assert "unknown_term_type" == diagnostic.code
        assert line_of(text, "term: exclusivty") == diagnostic.line
        assert column_of(text, "exclusivty") == diagnostic.column
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "did you mean `exclusivity`?" == diagnostic.help

    def test_unknown_approver_suggests_the_approver(self) -> None:
        """A misspelled approver gets unknown_approver with "did you mean"."""
        text = document(rule_yaml(approver="legl"))
        diagnostic = only_diagnostic(text)
        assert "unknown_approver" == diagnostic.code
        assert line_of(text, "approver: legl") == diagnostic.line
        assert "did you mean `legal`?" == diagnostic.help

    def test_unknown_approver_lists_the_approvers(self) -> None:
        """An approver far from every known one gets the list of approvers as help."""
        diagnostic = only_diagnostic(document(rule_yaml(approver="ceo")))
        assert "unknown_approver" == diagnostic.code
        assert "approvers: deal_desk, finance, legal, executive" == diagnostic.help

    def test_unknown_field_placeholder_in_message(self) -> None:
        """A message quoting a misspelled field gets unknown_placeholder with "did you mean"."""
        text = document(rule_yaml(message='"exclusivity lasts {duration_month} months"'))
        diagnostic = only_diagnostic(text)
        assert "unknown_placeholder" == diagnostic.code
        assert line_of(text, "{duration_month}") == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "did you mean `duration_months`?" == diagnostic.help

    def test_unknown_parameter_placeholder_in_message(self) -> None:
        """A message quoting a misspelled `{$parameter}` gets unknown_placeholder."""
        text = document(rule_yaml(message='"the limit is {$max_exclusivity_month}"'))
        diagnostic = only_diagnostic(text)
        assert "unknown_placeholder" == diagnostic.code
        assert "did you mean `$max_exclusivity_months`?" == diagnostic.help


class TestAcceptance:
    TEXT = document(
        rule_yaml(require="duration_month <= $max_exclusivity_months"),
        rule_yaml(
            id="exclusivity.reversion",
            require="duration_months <= $max_exclusivity_month",
        ),
        rule_yaml(require="reversion == 'non_exclusive'"),
    )

    def test_three_mistakes_give_exactly_three_diagnostics(self) -> None:
        """A field typo, an unknown parameter and a duplicate id give those three, in order."""
        text = self.TEXT
        result = validate(text)
        assert result.ruleset is None
        assert [
            ("unknown_field", line_of(text, "duration_month <="), "exclusivity.time-limit"),
            (
                "unknown_parameter",
                line_of(text, "duration_months <= $max_exclusivity_month"),
                "exclusivity.reversion",
            ),
            (
                "duplicate_rule_id",
                line_of(text, "- id: exclusivity.time-limit", 2),
                "exclusivity.time-limit",
            ),
        ] == [(d.code, d.line, d.rule_id) for d in result.diagnostics]
        assert [
            "did you mean `duration_months`?",
            "did you mean `max_exclusivity_months`?",
            f"the first rule with this id is at line "
            f"{line_of(text, '- id: exclusivity.time-limit')}; give each rule its own id",
        ] == [d.help for d in result.diagnostics]
        assert all(FILE == d.file for d in result.diagnostics)

    def test_check_command_prints_three_diagnostics_and_exits_1(self, tmp_path: Path) -> None:
        """`termdesk check FILE` prints file:line:col: code: message plus help, exits 1."""
        path = tmp_path / "ruleset.yaml"
        path.write_text(self.TEXT, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "termdesk.cli", "check", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 1 == done.returncode
        assert "Traceback" not in done.stdout + done.stderr
        lines = done.stdout.splitlines()
        located = [
            match.groups()
            for line in lines
            if (match := re.match(rf"^{re.escape(str(path))}:(\d+):(\d+): (\w+): (.+)$", line))
        ]
        assert [
            (str(line_of(self.TEXT, "duration_month <=")), "unknown_field"),
            (
                str(line_of(self.TEXT, "duration_months <= $max_exclusivity_month")),
                "unknown_parameter",
            ),
            (str(line_of(self.TEXT, "- id: exclusivity.time-limit", 2)), "duplicate_rule_id"),
        ] == [(line, code) for line, _, code, _ in located]
        helps = [line.strip() for line in lines if line.startswith("  help: ")]
        first_line = line_of(self.TEXT, "- id: exclusivity.time-limit")
        assert [
            "help: did you mean `duration_months`?",
            "help: did you mean `max_exclusivity_months`?",
            f"help: the first rule with this id is at line {first_line}; give each rule its own id",
        ] == helps
        assert "1 ruleset(s) checked, 3 error(s)" == lines[-1]


class TestStructure:
    def test_bad_severity_lists_the_severities(self) -> None:
        """A severity that is not BLOCK, REVIEW or WARN gets bad_value naming all three."""
        text = document(rule_yaml(severity="block"))
        diagnostic = only_diagnostic(text)
        assert "bad_value" == diagnostic.code
        assert line_of(text, "severity: block") == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "`block`" in diagnostic.message
        for severity in ("BLOCK", "REVIEW", "WARN"):
            assert severity in diagnostic.help

    def test_missing_key_is_named_at_the_rule(self) -> None:
        """A rule without `rationale` gets missing_key naming the key, at the rule's line."""
        text = document(rule_yaml(rationale=None))
        diagnostic = only_diagnostic(text)
        assert "missing_key" == diagnostic.code
        assert "missing key `rationale`" == diagnostic.message
        assert line_of(text, "- id: exclusivity.time-limit") == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id

    def test_unknown_rule_key_suggests_the_key(self) -> None:
        """A misspelled rule key gets unknown_key at the key, with "did you mean"."""
        text = document(rule_yaml(rationale=None, rationle="exclusivity must end"))
        diagnostics = validate(text).diagnostics
        unknown = [d for d in diagnostics if d.code == "unknown_key"]
        assert 1 == len(unknown)
        assert line_of(text, "rationle:") == unknown[0].line
        assert column_of(text, "rationle:") == unknown[0].column
        assert "did you mean `rationale`?" == unknown[0].help
        assert "exclusivity.time-limit" == unknown[0].rule_id

    def test_unknown_top_level_key_suggests_the_key(self) -> None:
        """A misspelled top-level key (`parameter:`) gets unknown_key with "did you mean"."""
        text = document().replace("parameters:", "parameter:")
        diagnostic = only_diagnostic(text)
        assert "unknown_key" == diagnostic.code
        assert line_of(text, "parameter:") == diagnostic.line
        assert "did you mean `parameters`?" == diagnostic.help

    def test_yaml_syntax_error_is_a_diagnostic(self) -> None:
        """Text that is not YAML gets one yaml_syntax diagnostic with a line, no exception."""
        text = document() + "  - id: [unclosed\n"
        diagnostic = only_diagnostic(text)
        assert "yaml_syntax" == diagnostic.code
        assert diagnostic.line >= line_of(text, "[unclosed")
        assert FILE == diagnostic.file

    def test_document_that_is_not_a_mapping(self) -> None:
        """A YAML list instead of a ruleset mapping gets wrong_type, not an exception."""
        diagnostic = only_diagnostic("- a\n- b\n")
        assert "wrong_type" == diagnostic.code
        assert 1 == diagnostic.line

    def test_diagnostic_prints_place_code_message_and_help(self) -> None:
        """A diagnostic prints as `file:line:col: code: message (rule id)` then `help:`."""
        text = document(rule_yaml(term="exclusivty"))
        diagnostic = only_diagnostic(text)
        line, column = line_of(text, "term: exclusivty"), column_of(text, "exclusivty")
        assert (
            f"{FILE}:{line}:{column}: unknown_term_type: unknown term type `exclusivty` "
            "(rule exclusivity.time-limit)\n  help: did you mean `exclusivity`?"
        ) == str(diagnostic)


class TestConditionTypes:
    def test_text_field_compared_with_a_number(self) -> None:
        """Comparing a text field with a number is a type_mismatch at the leaf."""
        text = document(
            rule_yaml(term="revenue_share", require="net_revenue_definition == 3", message='"x"')
        )
        diagnostic = only_diagnostic(text)
        assert "type_mismatch" == diagnostic.code
        assert line_of(text, "net_revenue_definition == 3") == diagnostic.line
        assert column_of(text, "net_revenue_definition") == diagnostic.column
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "text" in diagnostic.message
        assert "number" in diagnostic.message

    def test_order_comparison_on_an_enum(self) -> None:
        """`<` on an enum field is a type_mismatch telling to use == or !=."""
        text = document(rule_yaml(require="reversion < 'none'", message='"x"'))
        diagnostic = only_diagnostic(text)
        assert "type_mismatch" == diagnostic.code
        assert line_of(text, "reversion < 'none'") == diagnostic.line
        assert "`<`" in diagnostic.message
        assert "==" in diagnostic.message

    def test_bad_enum_value_suggests_the_value(self) -> None:
        """Comparing an enum with a value it does not hold gets bad_enum_value."""
        text = document(rule_yaml(require="reversion == 'non_exclusiv'", message='"x"'))
        diagnostic = only_diagnostic(text)
        assert "bad_enum_value" == diagnostic.code
        assert line_of(text, "'non_exclusiv'") == diagnostic.line
        assert "did you mean `non_exclusive`?" == diagnostic.help

    def test_bad_enum_value_in_a_list(self) -> None:
        """An `in [...]` list holding a value the enum lacks gets bad_enum_value."""
        text = document(
            rule_yaml(
                term="payment_terms",
                require="verification in ['activation', 'invoice_colection']",
                message='"x"',
            )
        )
        diagnostic = only_diagnostic(text)
        assert "bad_enum_value" == diagnostic.code
        assert "did you mean `invoice_collection`?" == diagnostic.help

    def test_matches_inside_require_is_unsupported_negation(self) -> None:
        """`matches` in `require` (negated by the engine) gets unsupported_negation."""
        text = document(
            rule_yaml(term="data_sharing", require="purpose matches '.*marketing.*'", message='"x"')
        )
        diagnostic = only_diagnostic(text)
        assert "unsupported_negation" == diagnostic.code
        assert line_of(text, "purpose matches") == diagnostic.line
        assert "when:" in diagnostic.help

    def test_matches_inside_when_is_accepted(self) -> None:
        """The same `matches` in `when:` is fine: the rule fires when the pattern matches."""
        text = document(
            rule_yaml(
                term="data_sharing",
                when="purpose matches '.*marketing.*'",
                require=None,
                message='"x"',
            )
        )
        result = validate(text)
        assert () == result.diagnostics
        assert result.ruleset is not None

    def test_leaf_syntax_error_points_at_the_column(self) -> None:
        """A leaf that does not parse gets `syntax` at the offending token's column."""
        text = document(rule_yaml(require="duration_months <= 12 12"))
        diagnostic = only_diagnostic(text)
        assert "syntax" == diagnostic.code
        assert line_of(text, "duration_months <= 12 12") == diagnostic.line
        assert column_of(text, "duration_months <= 12 12") + len("duration_months <= 12 ") == (
            diagnostic.column
        )
        assert "all:" in diagnostic.help

    @pytest.mark.parametrize(
        "require",
        [
            '"duration_month <= 12"',
            "['duration_month <= 12']",
            ">-\n      duration_month <= 12",
        ],
        ids=["double-quoted", "single-quoted-in-list", "folded-block"],
    )
    def test_quoted_leaf_error_points_at_the_text(self, require: str) -> None:
        """However the leaf is quoted, the diagnostic points at the misspelled field."""
        text = document(rule_yaml(require=require))
        diagnostic = only_diagnostic(text)
        assert "unknown_field" == diagnostic.code
        assert (line_of(text, "duration_month <="), column_of(text, "duration_month <=")) == (
            diagnostic.line,
            diagnostic.column,
        )

    def test_any_with_one_bad_leaf_reports_that_leaf(self) -> None:
        """In an `any:` list, the bad alternative is reported on its own line."""
        text = document(
            rule_yaml(
                require="\n      any:\n        - duration_months <= 12\n        - audit_right"
            )
        )
        diagnostic = only_diagnostic(text)
        assert "unknown_field" == diagnostic.code
        assert line_of(text, "- audit_right") == diagnostic.line
        assert "did you mean `audit_rights`?" == diagnostic.help


class TestTrades:
    def test_set_value_of_the_wrong_type(self) -> None:
        """A trade setting an int field to text gets trade_type_mismatch at the value."""
        text = document(rule_yaml(trades="\n      - set: {duration_months: twelve}"))
        diagnostic = with_code(text, "trade_type_mismatch")
        assert line_of(text, "duration_months: twelve") == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "duration_months" in diagnostic.message
        assert "twelve" in diagnostic.message
        assert validate(text).ruleset is None

    def test_set_enum_to_an_unknown_value(self) -> None:
        """A trade setting an enum to a value it lacks names the allowed values."""
        text = document(rule_yaml(trades="\n      - set: {reversion: maybe}"))
        diagnostic = with_code(text, "trade_type_mismatch")
        assert "non_exclusive" in diagnostic.help

    def test_set_from_a_field_of_another_kind(self) -> None:
        """A trade copying an enum into an int field gets trade_type_mismatch."""
        text = document(rule_yaml(trades="\n      - set: {duration_months: {field: reversion}}"))
        diagnostic = with_code(text, "trade_type_mismatch")
        assert line_of(text, "{field: reversion}") == diagnostic.line

    def test_removing_a_must_have(self) -> None:
        """A trade removing a must-have term type gets must_have_removal."""
        text = document(rule_yaml(trades="\n      - remove: confidentiality"))
        diagnostic = with_code(text, "must_have_removal")
        assert line_of(text, "remove: confidentiality") == diagnostic.line
        assert "exclusivity.time-limit" == diagnostic.rule_id
        assert "`confidentiality`" in diagnostic.message
        assert "never traded away" in diagnostic.help
        assert validate(text).ruleset is None

    def test_removing_a_tradable_is_accepted(self) -> None:
        """Removing a term that is not a must-have is a valid trade."""
        result = validate(document(rule_yaml(trades="\n      - remove: exclusivity")))
        assert () == result.diagnostics
        assert result.ruleset is not None

    def test_bad_trade_gets_only_its_own_diagnostic(self) -> None:
        """A trade with a bad `set` value is not also told it has no `set`."""
        text = document(rule_yaml(trades="\n      - set: {duration_months: twelve}"))
        assert ["trade_type_mismatch"] == [d.code for d in validate(text).diagnostics]


TEST_CASE = """\
  - name: a long exclusivity is rejected
    package:
      deal_id: t1
      terms:
        - {type: exclusivity, fields: {FIELDS}}
    expect:
      decision: REJECT
      violations: [RULE]
"""


def case_yaml(fields: str = "duration_months: 24", rule: str = "exclusivity.time-limit") -> str:
    """One test case: an exclusivity with `fields`, expected to break `rule`."""
    return TEST_CASE.replace("FIELDS", fields).replace("RULE", rule)


class TestTestCases:
    def test_valid_test_case_is_kept(self) -> None:
        """A well-formed test case validates and is kept with its line."""
        text = document(tests=case_yaml())
        result = validate(text)
        assert () == result.diagnostics
        assert result.ruleset is not None
        assert [("a long exclusivity is rejected", line_of(text, "- name: a long"))] == [
            (case.name, case.line) for case in result.ruleset.tests
        ]

    def test_unknown_rule_in_expectation(self) -> None:
        """A test case naming a rule that does not exist gets unknown_rule."""
        text = document(tests=case_yaml(rule="exclusivity.time-limt"))
        diagnostic = only_diagnostic(text)
        assert "unknown_rule" == diagnostic.code
        assert line_of(text, "expect:") <= diagnostic.line <= line_of(text, "violations:")
        assert "`exclusivity.time-limt`" in diagnostic.message
        assert "did you mean `exclusivity.time-limit`?" == diagnostic.help

    def test_package_that_does_not_fit_the_vocabulary(self) -> None:
        """A test package with a misspelled field gets bad_test_package naming the path."""
        text = document(tests=case_yaml(fields="duration_month: 24"))
        diagnostic = only_diagnostic(text)
        assert "bad_test_package" == diagnostic.code
        assert line_of(text, "package:") <= diagnostic.line <= line_of(text, "duration_month:")
        assert "terms[0].fields.duration_month" in diagnostic.message
        assert "did you mean `duration_months`?" == diagnostic.help

    def test_package_value_of_the_wrong_type(self) -> None:
        """A test package with text in an int field gets bad_test_package."""
        text = document(tests=case_yaml(fields="duration_months: two years"))
        diagnostic = only_diagnostic(text)
        assert "bad_test_package" == diagnostic.code
        assert "terms[0].fields.duration_months" in diagnostic.message


class TestOrdering:
    def test_diagnostics_sorted_by_line(self) -> None:
        """Diagnostics come sorted by line, whatever order the checks found them in."""
        # The approver is checked before the condition, but is written after it here.
        text = document(
            rule_yaml(
                approver=None,
                message=None,
                rationale=None,
                require="duration_month <= 12",
            ).rstrip("\n")
            + "\n    message: x\n    rationale: y\n    approver: legl\n",
            rule_yaml(id="exclusivity.other", term="exclusivty"),
        )
        diagnostics = validate(text).diagnostics
        assert ["unknown_field", "unknown_approver", "unknown_term_type"] == [
            d.code for d in diagnostics
        ]
        lines = [d.line for d in diagnostics]
        assert sorted(lines) == lines
        assert line_of(text, "duration_month <=") == lines[0]


class TestLeafParser:
    def test_comparison_with_a_parameter(self) -> None:
        """`field <= $param` parses to a ref, the operator and a param, with columns."""
        assert RawLeaf(
            RawRef("duration_months", 0), "<=", RawParam("max_exclusivity_months", 19)
        ) == parse_leaf("duration_months <= $max_exclusivity_months")

    def test_quoted_text_and_numbers(self) -> None:
        """Quoted text (either quote), integers, decimals and negatives are literals."""
        assert RawLeaf(RawRef("reversion", 0), "==", RawLiteral("non_exclusive", 13)) == (
            parse_leaf("reversion == 'non_exclusive'")
        )
        assert RawLiteral("a b", 5) == parse_leaf('x == "a b"').right
        assert RawLiteral(12, 5) == parse_leaf("x >= 12").right
        assert RawLiteral(0.15, 5) == parse_leaf("x <= 0.15").right
        assert RawLiteral(-1.5, 4) == parse_leaf("x > -1.5").right
        assert RawLiteral(True, 5) == parse_leaf("x == true").right

    def test_in_list_and_in_parameter(self) -> None:
        """`in` takes a bracketed list of values or a `$parameter`."""
        leaf = parse_leaf("verification in ['activation', 'staged']")
        assert "in" == leaf.operator
        assert RawList((RawLiteral("activation", 17), RawLiteral("staged", 31)), 16) == leaf.right
        assert RawParam("allowed", 16) == parse_leaf("verification in $allowed").right

    def test_calls_and_bare_fields(self) -> None:
        """Function calls and a bare bool field parse without an operator."""
        assert RawLeaf(RawCall("count", RawRef("segments", 6), 0), "<=", RawLiteral(2, 19)) == (
            parse_leaf("count(segments) <= 2")
        )
        assert RawLeaf(RawCall("present", RawRef("basis", 8), 0)) == parse_leaf("present(basis)")
        assert RawLeaf(RawRef("audit_rights", 0)) == parse_leaf("audit_rights")
        ordered = parse_leaf("ascending(tiers.threshold)").left
        assert isinstance(ordered, RawCall)
        assert RawRef("tiers.threshold", 10) == ordered.argument

    def test_word_operators_and_field_to_field(self) -> None:
        """`contains`, `matches` and a field on the right side parse."""
        assert "contains" == parse_leaf("segments contains 'uk'").operator
        assert RawLiteral(".*m.*", 16) == parse_leaf("purpose matches '.*m.*'").right
        assert RawLeaf(RawRef("renewal_rate", 0), "<=", RawRef("rate", 14)) == parse_leaf(
            "renewal_rate<=rate"
        )

    @pytest.mark.parametrize(
        ("text", "column", "message"),
        [
            ("", 0, "empty condition"),
            ("duration_months <=", 18, "condition ends too early"),
            ("x <= 1 and y", 7, "unexpected `and` after the condition"),
            ("not audit_rights", 4, "expected an operator after the operand"),
            ("x == 'open", 5, "unexpected `'open`"),
            ("x in 'a'", 5, "expected a list or a `$parameter`"),
            ("x <= <= 3", 5, "unexpected `<=`"),
            ("foo(bar)", 0, "unknown function `foo`"),
        ],
    )
    def test_syntax_errors_carry_a_column(self, text: str, column: int, message: str) -> None:
        """A leaf that does not parse raises LeafSyntaxError with the 0-based column."""
        with pytest.raises(LeafSyntaxError) as caught:
            parse_leaf(text)
        assert column == caught.value.column
        assert message in str(caught.value)

    def test_syntax_error_help_names_the_combinators(self) -> None:
        """A leaf written like `a and b` is told to combine with `all:` / `any:`."""
        with pytest.raises(LeafSyntaxError) as caught:
            parse_leaf("x <= 1 and y")
        assert "`all:`" in caught.value.help


DURATION = Field("term", "duration_months")
RATE = Field("term", "rate")
RENEWAL = Field("term", "renewal_rate")
SEGMENTS_N = Count("term", "segments")
REVERSION = Field("term", "reversion")


class TestNegationNormalForm:
    def test_negated_comparison_is_true_when_the_field_is_absent(self) -> None:
        """not(duration <= 12) -> absent(duration) or duration > 12."""
        assert AnyOf((Absent(DURATION), Compare(DURATION, ">", Const(12)))) == to_nnf(
            Not(Compare(DURATION, "<=", Const(12)))
        )

    def test_negated_field_to_field_comparison_covers_both_absences(self) -> None:
        """not(renewal <= rate) holds when either field is absent, or renewal > rate."""
        assert AnyOf((Absent(RENEWAL), Absent(RATE), Compare(RENEWAL, ">", RATE))) == to_nnf(
            Not(Compare(RENEWAL, "<=", RATE))
        )

    def test_negated_count_needs_no_absence(self) -> None:
        """A count is 0 when the list is absent, so its negation is a plain flip."""
        assert Compare(SEGMENTS_N, "<", Const(1)) == to_nnf(
            Not(Compare(SEGMENTS_N, ">=", Const(1)))
        )

    def test_not_all_is_any_not(self) -> None:
        """not(all(a, b)) -> any(not a, not b), with each negation pushed to the leaf."""
        a = Present(DURATION)
        b = Compare(SEGMENTS_N, "<=", Const(2))
        assert AnyOf((Absent(DURATION), Compare(SEGMENTS_N, ">", Const(2)))) == to_nnf(
            Not(AllOf((a, b)))
        )

    def test_not_any_is_all_not(self) -> None:
        """not(any(a, b)) -> all(not a, not b)."""
        a = Present(DURATION)
        b = OneOf(REVERSION, (Const("non_exclusive"),))
        values = (Const("non_exclusive"),)
        assert AllOf(
            (Absent(DURATION), AnyOf((Absent(REVERSION), NoneOf(REVERSION, values))))
        ) == to_nnf(Not(AnyOf((a, b))))

    def test_double_negation_cancels(self) -> None:
        """not(not(x)) is x."""
        leaf = Compare(DURATION, "<=", Const(12))
        assert leaf == to_nnf(Not(Not(leaf)))

    def test_negated_exists_is_no_term(self) -> None:
        """not(exists confidentiality) -> no confidentiality term."""
        assert NoTerm("confidentiality") == to_nnf(Not(TermExists("confidentiality")))

    def test_nnf_has_no_not_left(self) -> None:
        """Nested negations inside all/any all reach the leaves."""
        tree = AllOf((Not(AnyOf((Present(DURATION), Not(Present(RATE))))), Present(RENEWAL)))
        assert "Not(" not in repr(to_nnf(tree))

    def test_negated_match_is_refused(self) -> None:
        """A regular expression match cannot be negated in the engine."""
        with pytest.raises(ValueError, match="cannot be negated"):
            to_nnf(Not(Matches(Field("term", "purpose"), ".*x.*")))

    def test_negated_exists_normalises_its_where(self) -> None:
        """not(exists t where absent(f)) leaves no `Not` inside the `where`."""
        where = Not(Present(Field("term", "weekly_reporting_days")))
        assert "Not(" not in repr(to_nnf(Not(TermExists("partner_commitments", where))))


class TestEngineLimits:
    """What durable_rules cannot hold is refused at validation, not at evaluation."""

    def test_more_than_64_conditions_on_one_fact_is_refused(self) -> None:
        """65 distinct context conditions (with the canary) would crash the engine: refused."""
        rules = [
            rule_yaml(
                id=f"deal.long-{n}",
                term=None,
                require=None,
                when=f"context.agreement_months > {n}",
                message="m",
            )
            for n in range(64)
        ]
        diagnostic = only_diagnostic(document(*rules))
        assert "too_many_conditions" == diagnostic.code
        assert "the deal context" in diagnostic.message

    def test_64_conditions_on_one_fact_are_accepted(self) -> None:
        """64 distinct patterns on the deal fact (63 rules and the canary) still validate."""
        rules = [
            rule_yaml(
                id=f"deal.long-{n}",
                term=None,
                require=None,
                when=f"context.agreement_months > {n}",
                message="m",
            )
            for n in range(63)
        ]
        assert validate(document(*rules)).ok
