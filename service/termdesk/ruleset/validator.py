"""Checks a ruleset source and builds the checked `Ruleset`, or explains every problem.

The checks run as named stages, in order; each adds diagnostics and later stages skip
what an earlier one could not build:

    parse       YAML syntax
    structure   keys and value kinds of the document, each rule and each test (pydantic)
    parameters  parameter names and values
    buckets     known term types, each in one bucket
    defaults    the fields a term gets when a trade adds it or a giveaway offers it
    rules       ids, terms, approvers, conditions (names, types, parameters), messages
    trades      targets exist, values fit the field, no removal of a must-have
    limits      what the engine can hold (joins per rule, rules per ruleset)
    tests       test packages fit the vocabulary and name known rules

Diagnostics are capped at `MAX_DIAGNOSTICS`; "valid" means no error-level diagnostic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from termdesk.errors import PackageError, RulesetError
from termdesk.messages import placeholders
from termdesk.model import APPROVER_ORDER, Decision, Severity, Value
from termdesk.ruleset import compiler
from termdesk.ruleset.conditions import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    ConstValue,
    Contains,
    Count,
    Field,
    LeafSyntaxError,
    Matches,
    Not,
    OneOf,
    Operand,
    Ordered,
    Present,
    RawCall,
    RawLeaf,
    RawList,
    RawLiteral,
    RawOperand,
    RawParam,
    RawRef,
    TermExists,
    fields_in,
    parse_leaf,
)
from termdesk.ruleset.diagnostics import Diagnostic, Level
from termdesk.ruleset.model import (
    BUCKETS,
    Change,
    Expectation,
    Rule,
    Ruleset,
    TestCase,
    TradeOption,
)
from termdesk.ruleset.source import Location, SourceDocument, YamlError, parse_yaml
from termdesk.ruleset.source import Path as DocPath
from termdesk.vocabulary import (
    FieldSpec,
    TermTypeSpec,
    Vocabulary,
    check_package,
    default_vocabulary,
    suggest,
)

__all__ = [
    "MAX_DIAGNOSTICS",
    "ValidationResult",
    "load_ruleset",
    "read_source",
    "validate_source",
]

MAX_DIAGNOSTICS = 100
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
PARAMETER_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
RESERVED_FIELDS = frozenset({"id", "sid", "t", "i"})
# durable_rules' `$mt` has a regex dialect of its own; these parts of Python's do not mean
# the same there (measured in tests/test_differential.py), so patterns may not use them.
_UNSUPPORTED_PATTERN = re.compile(r"\\.?|\(\?|\{\d*,\d*\}|\[\^")


# --- document structure (pydantic) ------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _DocumentShape(_Strict):
    name: str
    description: str = ""
    version: int = 1
    parameters: dict[str, Any] = {}
    buckets: dict[Literal["must_have", "tradable", "giveaway"], list[str]] = {}
    defaults: dict[str, dict[str, Any]] = {}
    rules: list[Any]
    tests: list[Any] = []


class _RuleShape(_Strict):
    id: str
    term: str | None = None
    when: Any = None
    require: Any = None
    severity: Literal["BLOCK", "REVIEW", "WARN"]
    approver: str
    field: str | None = None
    message: str
    rationale: str
    trades: list[dict[str, Any]] = []


class _ExpectShape(_Strict):
    decision: Literal["APPROVE", "NEEDS_APPROVAL", "REJECT"] | None = None
    violations: list[str] | None = None
    includes: list[str] = []
    excludes: list[str] = []
    approvers: list[str] | None = None


class _TestShape(_Strict):
    name: str
    package: dict[str, Any]
    expect: _ExpectShape


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Diagnostics, sorted by place, and the checked ruleset when there was no error."""

    diagnostics: tuple[Diagnostic, ...]
    ruleset: Ruleset | None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.level is Level.ERROR)

    @property
    def ok(self) -> bool:
        return self.ruleset is not None


def load_ruleset(path: Path, vocabulary: Vocabulary | None = None) -> Ruleset:
    """Reads and checks a ruleset file; raises `RulesetError` with every diagnostic."""
    result = validate_source(read_source(path), str(path), vocabulary)
    if result.ruleset is None:
        raise RulesetError(result.errors)
    return result.ruleset


def read_source(path: Path) -> str:
    """The text of a ruleset file exactly as stored (no newline translation: the digest
    is the sha256 of the file's bytes)."""
    return path.read_bytes().decode("utf-8")


def validate_source(
    text: str, file: str = "", vocabulary: Vocabulary | None = None
) -> ValidationResult:
    """Runs every stage over a ruleset source text."""
    checker = _Checker(text, file, vocabulary or default_vocabulary())
    ruleset = checker.run()
    diagnostics = tuple(sorted(checker.diagnostics, key=Diagnostic.sort_key))
    has_error = any(d.level is Level.ERROR for d in diagnostics)
    return ValidationResult(diagnostics, None if has_error else ruleset)


# --- the checker --------------------------------------------------------------------------


@dataclass
class _Scope:
    """What names mean where a condition is written."""

    rule_id: str
    term: TermTypeSpec | None
    negated: bool = False
    in_exists: bool = False


@dataclass
class _Checker:
    text: str
    file: str
    vocabulary: Vocabulary
    diagnostics: list[Diagnostic] = field(default_factory=list)
    document: SourceDocument = field(default_factory=lambda: SourceDocument(data=None))
    parameters: dict[str, ConstValue | tuple[ConstValue, ...]] = field(default_factory=dict)

    def run(self) -> Ruleset | None:
        try:
            self.document = parse_yaml(self.text)
        except YamlError as error:
            self.report("yaml_syntax", str(error), (), at=error.location)
            return None
        shape = self.structure(_DocumentShape, self.document.data, ())
        if shape is None:
            return None
        assert isinstance(shape, _DocumentShape)
        self.parameters = self.check_parameters(shape.parameters)
        buckets = self.check_buckets(shape.buckets)
        defaults = self.check_defaults(shape.defaults)
        rules = self.check_rules(shape.rules, buckets)
        self.check_engine_size(rules)
        tests = self.check_tests(shape.tests, rules)
        return Ruleset(
            name=shape.name,
            description=shape.description,
            version=shape.version,
            digest="sha256:" + hashlib.sha256(self.text.encode()).hexdigest(),
            parameters=self.parameters,
            buckets=buckets,
            defaults=defaults,
            rules=tuple(rules),
            tests=tuple(tests),
            source_file=self.file,
            parameter_descriptions={
                name: str(entry["description"])
                for name, entry in shape.parameters.items()
                if name in self.parameters and isinstance(entry, dict) and "description" in entry
            },
        )

    # -- reporting

    def report(
        self,
        code: str,
        message: str,
        path: DocPath,
        *,
        rule_id: str = "",
        help: str = "",
        key: bool = False,
        column_offset: int = 0,
        at: Location | None = None,
        level: Level = Level.ERROR,
    ) -> None:
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            return
        where = at or self.document.locate(path, key=key)
        self.diagnostics.append(
            Diagnostic(
                code=code,
                message=message,
                file=self.file,
                line=where.line,
                column=where.column + column_offset,
                rule_id=rule_id,
                help=help,
                level=level,
            )
        )

    def structure(self, shape: type[_Strict], data: object, path: DocPath) -> _Strict | None:
        """Checks keys and value kinds with pydantic; reports each error at its place."""
        if not isinstance(data, dict):
            self.report("wrong_type", "expected a mapping of keys to values", path)
            return None
        try:
            return shape.model_validate(data)
        except ValidationError as error:
            rule_id = str(data.get("id", "")) if shape is _RuleShape else ""
            for problem in error.errors():
                self.report_shape_error(shape, problem, path, rule_id)
            return None

    def report_shape_error(
        self, shape: type[_Strict], problem: Mapping[str, Any], path: DocPath, rule_id: str
    ) -> None:
        location = tuple(problem["loc"])
        kind = problem["type"]
        where = (*path, *location)
        name = str(location[-1]) if location else ""
        if kind == "missing":
            self.report("missing_key", f"missing key `{name}`", where[:-1], rule_id=rule_id)
        elif kind == "extra_forbidden":
            fields = _shape_at(shape, location[:-1])
            self.report(
                "unknown_key",
                f"unknown key `{name}`",
                where,
                rule_id=rule_id,
                help=suggest(name, fields),
                key=True,
            )
        elif kind == "literal_error":
            expected = problem.get("ctx", {}).get("expected", "")
            self.report(
                "bad_value",
                f"`{problem.get('input')}` is not allowed for `{name}`",
                where,
                rule_id=rule_id,
                help=f"use one of {expected}",
            )
        else:
            message = str(problem["msg"]).lower().replace("input should be", "expected")
            self.report("wrong_type", f"`{name}`: {message}", where, rule_id=rule_id)

    # -- parameters and buckets

    def check_parameters(
        self, raw: Mapping[str, Any]
    ) -> dict[str, ConstValue | tuple[ConstValue, ...]]:
        parameters: dict[str, ConstValue | tuple[ConstValue, ...]] = {}
        for name, entry in raw.items():
            path: DocPath = ("parameters", name)
            value = entry.get("value") if isinstance(entry, dict) else entry
            if isinstance(entry, dict) and set(entry) - {"value", "description"}:
                extra = sorted(set(entry) - {"value", "description"})[0]
                self.report(
                    "unknown_key",
                    f"unknown key `{extra}` in parameter `{name}`",
                    (*path, extra),
                    key=True,
                    help="a parameter is a value, or `{value: ..., description: ...}`",
                )
                continue
            if not PARAMETER_NAME.match(name):
                self.report(
                    "bad_name",
                    f"parameter name `{name}` is not lowercase letters, digits and `_`",
                    path,
                    key=True,
                )
                continue
            if isinstance(value, bool | int | float | str):
                parameters[name] = value
            elif isinstance(value, list) and value and all(_is_const(item) for item in value):
                parameters[name] = tuple(value)
            else:
                self.report(
                    "wrong_type",
                    f"parameter `{name}` must be a number, text, true/false or a list of those",
                    path,
                )
        return parameters

    def check_buckets(self, raw: Mapping[Any, list[str]]) -> dict[str, tuple[str, ...]]:
        buckets: dict[str, tuple[str, ...]] = {}
        seen: dict[str, str] = {}
        for bucket in BUCKETS:
            types = raw.get(bucket, [])
            for index, term_type in enumerate(types):
                path: DocPath = ("buckets", bucket, index)
                if self.vocabulary.term(term_type) is None:
                    self.report_unknown_term(term_type, path, "")
                elif term_type in seen:
                    self.report(
                        "duplicate_bucket",
                        f"`{term_type}` is in both `{seen[term_type]}` and `{bucket}`",
                        path,
                    )
                seen.setdefault(term_type, bucket)
            buckets[bucket] = tuple(types)
        return buckets

    def check_defaults(
        self, raw: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Mapping[str, Value]]:
        defaults: dict[str, Mapping[str, Value]] = {}
        for term_type, fields in raw.items():
            path: DocPath = ("defaults", term_type)
            if self.vocabulary.term(term_type) is None:
                self.report_unknown_term(term_type, path, "")
                continue
            resolved = {name: self.resolve_value(value, path, "") for name, value in fields.items()}
            if any(value is _INVALID for value in resolved.values()):
                continue
            checked = self.check_term_fields(term_type, resolved, path, "")
            if checked is not None:
                defaults[term_type] = checked
        return defaults

    def report_unknown_term(self, name: str, path: DocPath, rule_id: str) -> None:
        self.report(
            "unknown_term_type",
            f"unknown term type `{name}`",
            path,
            rule_id=rule_id,
            help=suggest(name, self.vocabulary.terms),
        )

    # -- rules

    def check_rules(
        self, raw_rules: Sequence[Any], buckets: Mapping[str, tuple[str, ...]]
    ) -> list[Rule]:
        rules: list[Rule] = []
        first_seen: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            path: DocPath = ("rules", index)
            shape = self.structure(_RuleShape, raw, path)
            if shape is None:
                continue
            assert isinstance(shape, _RuleShape)
            line = self.document.locate(path).line
            if shape.id in first_seen:
                self.report(
                    "duplicate_rule_id",
                    f"rule id `{shape.id}` is used twice",
                    (*path, "id"),
                    rule_id=shape.id,
                    help=f"the first rule with this id is at line {first_seen[shape.id]}; "
                    "give each rule its own id",
                )
                continue
            first_seen[shape.id] = line
            rule = self.check_rule(shape, path, line, buckets)
            if rule is not None:
                rules.append(rule)
        return rules

    def check_rule(
        self,
        shape: _RuleShape,
        path: DocPath,
        line: int,
        buckets: Mapping[str, tuple[str, ...]],
    ) -> Rule | None:
        errors_before = self.error_count()
        rule_id = shape.id
        if not RULE_ID.match(rule_id):
            self.report(
                "bad_rule_id",
                f"rule id `{rule_id}` must be lowercase words joined by `.`, `-` or `_`",
                (*path, "id"),
                rule_id=rule_id,
            )
        term: TermTypeSpec | None = None
        if shape.term is not None:
            term = self.vocabulary.term(shape.term)
            if term is None:
                self.report_unknown_term(shape.term, (*path, "term"), rule_id)
                return None
        if shape.approver not in APPROVER_ORDER:
            self.report(
                "unknown_approver",
                f"unknown approver `{shape.approver}`",
                (*path, "approver"),
                rule_id=rule_id,
                help=suggest(shape.approver, APPROVER_ORDER)
                or f"approvers: {', '.join(APPROVER_ORDER)}",
            )
        when = self.condition(shape.when, (*path, "when"), _Scope(rule_id, term))
        require = self.condition(
            shape.require, (*path, "require"), _Scope(rule_id, term, negated=True)
        )
        if term is None and shape.when is None and shape.require is None:
            self.report(
                "empty_rule",
                "a rule without `term` needs a `when` or a `require`",
                path,
                rule_id=rule_id,
                help="without either it would flag every deal",
            )
        field_name = shape.field or ""
        if term is not None and field_name and field_name not in term.fields:
            self.report_unknown_field(field_name, term, (*path, "field"), rule_id)
        elif term is not None and not field_name:
            read = [f.name for f in _term_fields(require) + _term_fields(when)]
            field_name = read[0] if read else ""
        reported_term = shape.term or _first_term_named(require) or _first_term_named(when) or ""
        self.check_message(shape.message, (*path, "message"), term, rule_id)
        trades = tuple(
            trade
            for index, raw in enumerate(shape.trades)
            if (trade := self.trade(raw, (*path, "trades", index), term, rule_id, buckets))
        )
        if self.error_count() > errors_before:
            return None
        rule = Rule(
            id=rule_id,
            term=shape.term,
            when=when,
            require=require,
            severity=Severity(shape.severity),
            approver=shape.approver,
            field=field_name,
            reported_term=reported_term,
            message=shape.message,
            rationale=shape.rationale.strip(),
            trades=trades,
            line=line,
        )
        self.check_limits(rule, path)
        return rule

    def error_count(self) -> int:
        return sum(1 for d in self.diagnostics if d.level is Level.ERROR)

    def report_unknown_field(
        self, name: str, term: TermTypeSpec, path: DocPath, rule_id: str, column_offset: int = 0
    ) -> None:
        self.report(
            "unknown_field",
            f"term type `{term.name}` has no field `{name}`",
            path,
            rule_id=rule_id,
            help=suggest(name, term.fields) or f"fields: {', '.join(term.fields)}",
            column_offset=column_offset,
        )

    def check_message(
        self, message: str, path: DocPath, term: TermTypeSpec | None, rule_id: str
    ) -> None:
        for placeholder in placeholders(message):
            name = placeholder.name
            if name.startswith("$"):
                known = name[1:] in self.parameters
                candidates: Sequence[str] = [f"${p}" for p in self.parameters]
            elif name.startswith("context."):
                known = name.removeprefix("context.") in self.vocabulary.context
                candidates = [f"context.{c}" for c in self.vocabulary.context]
            else:
                known = term is not None and name in term.fields
                candidates = list(term.fields) if term else []
            if not known:
                self.report(
                    "unknown_placeholder",
                    f"message quotes `{{{name}}}`, which names nothing",
                    path,
                    rule_id=rule_id,
                    help=suggest(name, candidates)
                    or "quote a field of the term, `{context.<field>}` or `{$<parameter>}`",
                )

    def check_limits(self, rule: Rule, path: DocPath) -> None:
        count = compiler.clause_count(rule)
        if count > compiler.MAX_CLAUSES_PER_RULE:
            self.report(
                "too_complex",
                f"the rule expands to {count} engine rules; the limit is "
                f"{compiler.MAX_CLAUSES_PER_RULE}",
                path,
                rule_id=rule.id,
                help="split it into several rules, or use `in [...]` instead of many `any:` "
                "alternatives across terms",
            )

    def check_engine_size(self, rules: Sequence[Rule]) -> None:
        total = sum(compiler.clause_count(rule) for rule in rules) + 1  # + the canary
        if total > compiler.MAX_ENGINE_RULES:
            self.report(
                "too_many_rules",
                f"the ruleset compiles to {total} engine rules; durable_rules holds at most "
                f"{compiler.MAX_ENGINE_RULES}",
                ("rules",),
                help="split the ruleset, or merge rules that test the same term",
            )
        for fact_type, count in compiler.patterns_per_fact_type(rules).items():
            if count > compiler.MAX_PATTERNS_PER_FACT:
                what = "the deal context" if fact_type == compiler.DEAL_FACT_TYPE else fact_type
                self.report(
                    "too_many_conditions",
                    f"{count} different conditions test {what}; the engine matches one "
                    f"fact against at most {compiler.MAX_PATTERNS_PER_FACT}",
                    ("rules",),
                    help="merge rules whose conditions on it differ only by a threshold",
                )

    # -- conditions

    def condition(self, raw: object, path: DocPath, scope: _Scope) -> Condition | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            return self.leaf(raw, path, scope)
        if isinstance(raw, bool | int | float):
            self.report(
                "wrong_type",
                f"`{raw}` is not a condition",
                path,
                rule_id=scope.rule_id,
                help="write a comparison such as `duration_months <= 12`",
            )
            return None
        if isinstance(raw, list):
            return self.combine(AllOf, raw, path, scope)
        if not isinstance(raw, dict) or len(raw) != 1:
            self.report(
                "bad_condition",
                "a condition is a text leaf or a mapping with exactly one of "
                "`all`, `any`, `not`, `exists`, `absent_term`",
                path,
                rule_id=scope.rule_id,
            )
            return None
        ((key, value),) = raw.items()
        child = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.report(
                    "bad_condition", f"`{key}` takes a non-empty list", child, rule_id=scope.rule_id
                )
                return None
            return self.combine(AllOf if key == "all" else AnyOf, value, child, scope)
        if key == "not":
            inner = self.condition(value, child, replace(scope, negated=not scope.negated))
            return Not(inner) if inner is not None else None
        if key in ("exists", "absent_term"):
            exists = self.term_exists(value, child, scope)
            if exists is None:
                return None
            return exists if key == "exists" else Not(exists)
        self.report(
            "bad_condition",
            f"unknown combinator `{key}`",
            child,
            rule_id=scope.rule_id,
            key=True,
            help=suggest(key, ("all", "any", "not", "exists", "absent_term")),
        )
        return None

    def combine(
        self,
        kind: type[AllOf] | type[AnyOf],
        raw: list[object],
        path: DocPath,
        scope: _Scope,
    ) -> Condition | None:
        items = [self.condition(item, (*path, i), scope) for i, item in enumerate(raw)]
        if any(item is None for item in items):
            return None
        checked = tuple(item for item in items if item is not None)
        return checked[0] if len(checked) == 1 else kind(checked)

    def term_exists(self, raw: object, path: DocPath, scope: _Scope) -> TermExists | None:
        where_raw: object = None
        if isinstance(raw, dict):
            unknown = set(raw) - {"term", "where"}
            if unknown or "term" not in raw:
                self.report(
                    "bad_condition",
                    "write `{term: <term type>, where: <condition>}` or just the term type",
                    path,
                    rule_id=scope.rule_id,
                )
                return None
            name, where_raw = raw["term"], raw.get("where")
            name_path: DocPath = (*path, "term")
        else:
            name, name_path = raw, path
        if not isinstance(name, str):
            self.report("bad_condition", "expected a term type", name_path, rule_id=scope.rule_id)
            return None
        term = self.vocabulary.term(name)
        if term is None:
            self.report_unknown_term(name, name_path, scope.rule_id)
            return None
        if scope.in_exists:
            self.report(
                "nested_term",
                f"`{name}` is tested inside another term's condition",
                name_path,
                rule_id=scope.rule_id,
                help="the engine joins terms one level deep: move it to the rule's condition",
            )
            return None
        if scope.term is not None and term.name == scope.term.name:
            self.report(
                "self_reference",
                f"the rule is about `{name}` terms and also tests for `{name}` terms",
                name_path,
                rule_id=scope.rule_id,
                help="test the term's own fields directly",
            )
            return None
        where = self.condition(
            where_raw,
            (*path, "where"),
            _Scope(scope.rule_id, term, negated=False, in_exists=True),
        )
        if where_raw is not None and where is None:
            return None
        return TermExists(term.name, where)

    def leaf(self, text: str, path: DocPath, scope: _Scope) -> Condition | None:
        try:
            raw = parse_leaf(text)
        except LeafSyntaxError as error:
            self.report(
                "syntax",
                str(error),
                path,
                rule_id=scope.rule_id,
                help=error.help,
                column_offset=error.column,
            )
            return None
        return _LeafResolver(self, path, scope).resolve(raw)

    # -- trades

    def trade(
        self,
        raw: Mapping[str, Any],
        path: DocPath,
        term: TermTypeSpec | None,
        rule_id: str,
        buckets: Mapping[str, tuple[str, ...]],
    ) -> TradeOption | None:
        allowed = ("set", "unset", "add", "remove", "manual", "summary")
        errors_before = self.error_count()
        for key in raw:
            if key not in allowed:
                self.report(
                    "unknown_key",
                    f"unknown trade key `{key}`",
                    (*path, key),
                    key=True,
                    rule_id=rule_id,
                    help=suggest(key, allowed) or f"keys: {', '.join(allowed)}",
                )
                return None
        changes: list[Change] = []
        for target, value in _items(raw.get("set")):
            change = self.set_change(target, value, (*path, "set", target), term, rule_id)
            if change is not None:
                changes.append(change)
        for index, name in enumerate(_as_list(raw.get("unset"))):
            if term is None or name not in term.fields:
                self.report_no_target(str(name), (*path, "unset", index), term, rule_id)
            else:
                changes.append(Change("remove_field", term.name, field=str(name)))
        for term_type, fields in _items(raw.get("add")):
            change = self.add_change(term_type, fields, (*path, "add", term_type), rule_id)
            if change is not None:
                changes.append(change)
        for index, name in enumerate(_as_list(raw.get("remove"))):
            removal_path: DocPath = (*path, "remove", index)
            if self.vocabulary.term(str(name)) is None:
                self.report_unknown_term(str(name), removal_path, rule_id)
            elif name in buckets.get("must_have", ()):
                self.report(
                    "must_have_removal",
                    f"a trade removes `{name}`, which the ruleset lists as a must-have",
                    removal_path,
                    rule_id=rule_id,
                    help="must-haves are never traded away: offer a change to its fields",
                )
            else:
                changes.append(Change("remove_term", str(name)))
        manual = str(raw.get("manual") or "")
        if not any(raw.get(key) for key in ("set", "unset", "add", "remove", "manual")):
            self.report(
                "empty_trade",
                "a trade needs `set`, `unset`, `add`, `remove` or `manual`",
                path,
                rule_id=rule_id,
            )
            return None
        if self.error_count() > errors_before:
            return None
        return TradeOption(tuple(changes), str(raw.get("summary") or ""), manual)

    def report_no_target(
        self, name: str, path: DocPath, term: TermTypeSpec | None, rule_id: str
    ) -> None:
        if term is None:
            self.report(
                "no_term",
                f"`{name}` names no field: the rule has no `term`",
                path,
                rule_id=rule_id,
                help="write `<term type>.<field>`",
                key=True,
            )
        else:
            self.report_unknown_field(name, term, path, rule_id)

    def set_change(
        self, target: str, value: object, path: DocPath, term: TermTypeSpec | None, rule_id: str
    ) -> Change | None:
        owner, _, name = target.rpartition(".")
        target_term = self.vocabulary.term(owner) if owner else term
        if owner and target_term is None:
            self.report_unknown_term(owner, path, rule_id)
            return None
        if target_term is None or name not in target_term.fields:
            self.report_no_target(name, path, target_term, rule_id)
            return None
        if isinstance(value, dict) and set(value) == {"field"}:
            source = str(value["field"])
            if source not in target_term.fields:
                self.report_unknown_field(source, target_term, path, rule_id)
                return None
            if _kind(target_term.fields[source]) != _kind(target_term.fields[name]):
                self.report(
                    "trade_type_mismatch",
                    f"`{name}` cannot take the value of `{source}`: they hold different kinds",
                    path,
                    rule_id=rule_id,
                )
                return None
            return Change("set_field", target_term.name, field=name, from_field=source)
        param = value[1:] if isinstance(value, str) and value.startswith("$") else ""
        resolved = self.resolve_value(value, path, rule_id)
        if resolved is _INVALID:
            return None
        checked = self.check_term_fields(target_term.name, {name: resolved}, path, rule_id)
        if checked is None:
            return None
        return Change(
            "set_field", target_term.name, field=name, value=checked.get(name), param=param
        )

    def add_change(
        self, term_type: str, fields: object, path: DocPath, rule_id: str
    ) -> Change | None:
        if self.vocabulary.term(term_type) is None:
            self.report_unknown_term(term_type, path, rule_id)
            return None
        raw_fields = fields if isinstance(fields, dict) else {}
        resolved = {
            key: self.resolve_value(value, path, rule_id) for key, value in raw_fields.items()
        }
        if any(value is _INVALID for value in resolved.values()):
            return None
        checked = self.check_term_fields(term_type, resolved, path, rule_id)
        if checked is None:
            return None
        return Change("add_term", term_type, fields=checked)

    def resolve_value(self, value: object, path: DocPath, rule_id: str) -> object:
        if isinstance(value, str) and value.startswith("$"):
            name = value[1:]
            if name not in self.parameters:
                self.report_unknown_parameter(name, path, rule_id)
                return _INVALID
            parameter = self.parameters[name]
            return list(parameter) if isinstance(parameter, tuple) else parameter
        return value

    def check_term_fields(
        self, term_type: str, fields: Mapping[str, object], path: DocPath, rule_id: str
    ) -> Mapping[str, Value] | None:
        """Checks values against the vocabulary by checking a one-term package."""
        try:
            package = check_package(
                {"deal_id": "trade", "terms": [{"type": term_type, "fields": dict(fields)}]},
                self.vocabulary,
            )
        except PackageError as error:
            for problem in error.problems:
                where = problem.path.removeprefix("terms[0].fields.")
                self.report(
                    "trade_type_mismatch",
                    f"`{where}`: {problem.message}",
                    path,
                    rule_id=rule_id,
                    help=problem.help,
                )
            return None
        return package.terms[0].fields

    def report_unknown_parameter(
        self, name: str, path: DocPath, rule_id: str, column_offset: int = 0
    ) -> None:
        self.report(
            "unknown_parameter",
            f"unknown parameter `${name}`",
            path,
            rule_id=rule_id,
            help=suggest(name, self.parameters)
            or "declare it under `parameters:` at the top of the ruleset",
            column_offset=column_offset,
        )

    # -- tests

    def check_tests(self, raw_tests: Sequence[Any], rules: Sequence[Rule]) -> list[TestCase]:
        rule_ids = {rule.id for rule in rules}
        tests: list[TestCase] = []
        for index, raw in enumerate(raw_tests):
            path: DocPath = ("tests", index)
            shape = self.structure(_TestShape, raw, path)
            if shape is None:
                continue
            assert isinstance(shape, _TestShape)
            try:
                package = check_package(shape.package, self.vocabulary)
            except PackageError as error:
                for problem in error.problems:
                    self.report(
                        "bad_test_package",
                        f"test `{shape.name}`: {problem.path}: {problem.message}",
                        (*path, "package"),
                        help=problem.help,
                    )
                continue
            expect = shape.expect
            named = [*(expect.violations or []), *expect.includes, *expect.excludes]
            unknown = [rule_id for rule_id in named if rule_id not in rule_ids]
            for rule_id in unknown:
                self.report(
                    "unknown_rule",
                    f"test `{shape.name}` names rule `{rule_id}`, which is not in the ruleset",
                    (*path, "expect"),
                    help=suggest(rule_id, rule_ids),
                )
            bad_approvers = [a for a in expect.approvers or [] if a not in APPROVER_ORDER]
            for approver in bad_approvers:
                self.report(
                    "unknown_approver",
                    f"test `{shape.name}` expects unknown approver `{approver}`",
                    (*path, "expect", "approvers"),
                    help=suggest(approver, APPROVER_ORDER),
                )
            if unknown or bad_approvers:
                continue
            tests.append(
                TestCase(
                    name=shape.name,
                    package=package,
                    expect=Expectation(
                        decision=Decision(expect.decision) if expect.decision else None,
                        violations=None
                        if expect.violations is None
                        else frozenset(expect.violations),
                        includes=frozenset(expect.includes),
                        excludes=frozenset(expect.excludes),
                        approvers=None if expect.approvers is None else tuple(expect.approvers),
                    ),
                    line=self.document.locate(path).line,
                )
            )
        return tests


def _shape_at(shape: type[_Strict], location: Sequence[object]) -> Sequence[str]:
    """The keys allowed at `location` inside a shape, for did-you-mean on unknown keys."""
    current: object = shape
    for step in location:
        if not (isinstance(current, type) and issubclass(current, _Strict)):
            return ()
        field_info = current.model_fields.get(str(step))
        current = field_info.annotation if field_info is not None else None
    if isinstance(current, type) and issubclass(current, _Strict):
        return list(current.model_fields)
    return ()


class _Invalid:
    """Marks a value that could not be resolved (already reported)."""


_INVALID = _Invalid()


@dataclass
class _LeafResolver:
    """Resolves the names of one parsed leaf and checks that its types fit."""

    checker: _Checker
    path: DocPath
    scope: _Scope
    cross_term: TermTypeSpec | None = None

    def error(self, code: str, message: str, column: int, help: str = "") -> None:
        self.checker.report(
            code,
            message,
            self.path,
            rule_id=self.scope.rule_id,
            help=help,
            column_offset=column,
        )

    def resolve(self, raw: RawLeaf) -> Condition | None:
        condition = self.build(raw)
        if condition is None:
            return None
        if self.cross_term is not None:
            return TermExists(self.cross_term.name, condition)
        return condition

    def build(self, raw: RawLeaf) -> Condition | None:
        if raw.right is None:
            return self.alone(raw.left)
        left = self.operand(raw.left)
        right = self.operand(raw.right)
        if left is None or right is None:
            return None
        left_operand, left_spec = left
        right_operand = right[0]
        column = _column(raw.left)
        if raw.operator == "in":
            return self.one_of(left_operand, left_spec, right_operand, column)
        if raw.operator == "contains":
            return self.contains(left_operand, left_spec, right_operand, column)
        if raw.operator == "matches":
            return self.matches(left_operand, left_spec, right_operand, column)
        return self.compare(raw.operator, left, right, column)

    def alone(self, raw: RawOperand) -> Condition | None:
        if isinstance(raw, RawCall) and raw.function in ("present", "absent"):
            resolved = self.field(raw.argument)
            if resolved is None:
                return None
            field_ref, _ = resolved
            return Present(field_ref) if raw.function == "present" else Not(Present(field_ref))
        if isinstance(raw, RawCall) and raw.function in ("ascending", "non_decreasing"):
            ordered = self.ordered(raw)
            return None if ordered is None else Compare(ordered, "==", Const(True))
        if isinstance(raw, RawRef):
            resolved = self.field(raw)
            if resolved is None:
                return None
            field_ref, spec = resolved
            if spec.type == "bool":
                return Compare(field_ref, "==", Const(True))
            self.error(
                "type_mismatch",
                f"`{raw.name}` is not true/false, so it cannot stand alone",
                raw.column,
                "compare it, e.g. `present(...)` or `... == ...`",
            )
            return None
        self.error("bad_condition", "this leaf is a value, not a condition", _column(raw))
        return None

    def operand(
        self, raw: RawOperand
    ) -> tuple[Operand, FieldSpec | None] | tuple[tuple[Const, ...], None] | None:
        if isinstance(raw, RawLiteral):
            return Const(raw.value), None
        if isinstance(raw, RawParam):
            if raw.name not in self.checker.parameters:
                self.checker.report_unknown_parameter(
                    raw.name, self.path, self.scope.rule_id, raw.column
                )
                return None
            value = self.checker.parameters[raw.name]
            if isinstance(value, tuple):
                return tuple(Const(item, raw.name) for item in value), None
            return Const(value, raw.name), None
        if isinstance(raw, RawList):
            items: list[Const] = []
            for item in raw.items:
                resolved = self.operand(item)
                if resolved is None or not isinstance(resolved[0], Const):
                    return None
                items.append(resolved[0])
            return tuple(items), None
        if isinstance(raw, RawCall):
            if raw.function == "count":
                resolved_field = self.field(raw.argument)
                if resolved_field is None:
                    return None
                field_ref, spec = resolved_field
                if spec.type != "list":
                    self.error(
                        "type_mismatch",
                        f"`count` takes a list; `{spec.name}` is not one",
                        raw.column,
                    )
                    return None
                return Count(field_ref.scope, field_ref.name), None
            if raw.function in ("ascending", "non_decreasing"):
                ordered = self.ordered(raw)
                return None if ordered is None else (ordered, None)
            self.error(
                "bad_condition",
                f"`{raw.function}(...)` is a condition of its own, not a value",
                raw.column,
            )
            return None
        return self.field(raw)

    def ordered(self, raw: RawCall) -> Ordered | None:
        list_name, _, item_name = raw.argument.name.partition(".")
        resolved = self.field(RawRef(list_name, raw.argument.column))
        if resolved is None:
            return None
        field_ref, spec = resolved
        items = spec.items
        if spec.type != "list" or items is None or items.type != "object":
            self.error(
                "type_mismatch",
                f"`{raw.function}` takes a field of a list of objects, like `tiers.threshold`",
                raw.column,
            )
            return None
        if item_name not in items.fields:
            self.error(
                "unknown_field",
                f"the items of `{list_name}` have no field `{item_name}`",
                raw.argument.column,
                suggest(item_name, items.fields),
            )
            return None
        if _kind(items.fields[item_name]) != "number":
            self.error("type_mismatch", f"`{item_name}` is not a number", raw.argument.column)
            return None
        return Ordered(field_ref.scope, field_ref.name, item_name, raw.function == "ascending")

    def field(self, raw: RawRef) -> tuple[Field, FieldSpec] | None:
        name = raw.name
        vocabulary = self.checker.vocabulary
        head, _, rest = name.partition(".")
        if head == "context" and rest:
            if self.scope.in_exists:
                self.error(
                    "unsupported",
                    "a term's `where` condition cannot read the deal context",
                    raw.column,
                    "move the context test to the rule's own condition",
                )
                return None
            spec = vocabulary.context.get(rest)
            if spec is None:
                self.error(
                    "unknown_field",
                    f"the deal context has no field `{rest}`",
                    raw.column,
                    suggest(rest, vocabulary.context),
                )
                return None
            return self.checked(Field("context", rest), spec, raw.column)
        term = self.scope.term
        if rest and vocabulary.term(head) is not None and (term is None or head != term.name):
            if self.scope.in_exists or self.cross_term not in (None, vocabulary.term(head)):
                self.error(
                    "unsupported",
                    f"`{name}` reads a second term inside one comparison",
                    raw.column,
                    "compare one term's field with a value or a parameter",
                )
                return None
            self.cross_term = vocabulary.term(head)
            term, name = self.cross_term, rest
        elif rest and term is not None and head == term.name:
            name = rest
        if term is None:
            self.error(
                "no_term",
                f"`{name}` names no field: the rule has no `term`",
                raw.column,
                "write `context.<field>`, `<term type>.<field>`, or give the rule a `term`",
            )
            return None
        spec = term.fields.get(name)
        if spec is None:
            self.checker.report_unknown_field(name, term, self.path, self.scope.rule_id, raw.column)
            return None
        return self.checked(Field("term", name), spec, raw.column)

    def checked(
        self, field_ref: Field, spec: FieldSpec, column: int
    ) -> tuple[Field, FieldSpec] | None:
        if field_ref.name in RESERVED_FIELDS:
            self.error("unsupported", f"`{field_ref.name}` is a reserved name", column)
            return None
        return field_ref, spec

    def one_of(
        self, left: object, spec: FieldSpec | None, right: object, column: int
    ) -> Condition | None:
        if not isinstance(left, Field) or spec is None or spec.type not in ("enum", "text"):
            self.error("type_mismatch", "`in` tests a text or enum field against a list", column)
            return None
        values = right if isinstance(right, tuple) else None
        if not values:
            self.error("type_mismatch", "`in` needs a list, like `['a', 'b']`", column)
            return None
        for value in values:
            if not self.fits(spec, value, column):
                return None
        return OneOf(left, values)

    def contains(
        self, left: object, spec: FieldSpec | None, right: object, column: int
    ) -> Condition | None:
        items = spec.items if spec is not None else None
        if not isinstance(left, Field) or items is None or items.type == "object":
            self.error(
                "type_mismatch", "`contains` tests a list of text or numbers for one value", column
            )
            return None
        if not isinstance(right, Const) or not self.fits(items, right, column):
            return None
        return Contains(left, right)

    def matches(
        self, left: object, spec: FieldSpec | None, right: object, column: int
    ) -> Condition | None:
        if not isinstance(left, Field) or spec is None or spec.type not in ("text", "enum"):
            self.error("type_mismatch", "`matches` tests a text field", column)
            return None
        if not isinstance(right, Const) or not isinstance(right.value, str):
            self.error("type_mismatch", "`matches` takes a quoted pattern", column)
            return None
        if self.scope.negated:
            self.error(
                "unsupported_negation",
                "the engine cannot require a pattern (it cannot negate a regular expression)",
                column,
                "state the forbidden pattern in `when:` instead (the rule fires when it matches)",
            )
            return None
        pattern = right.value
        if pattern.startswith("^") or pattern.endswith("$"):
            self.error(
                "bad_pattern",
                "patterns always match the whole value; drop `^` and `$`",
                column,
                "use `.*word.*` to find a word anywhere",
            )
            return None
        unsupported = _UNSUPPORTED_PATTERN.search(pattern)
        if unsupported:
            self.error(
                "bad_pattern",
                f"`{unsupported.group()}` is not part of the engine's pattern language",
                column,
                "patterns may use letters, digits, spaces, `.`, `*`, `+`, `?`, `|`, `( )`, "
                "classes like `[a-z]` and counts like `{2}`",
            )
            return None
        try:
            re.compile(pattern)
        except re.error as error:
            self.error("bad_pattern", f"`{pattern}` is not a regular expression: {error}", column)
            return None
        return Matches(left, pattern)

    def compare(
        self,
        operator: str,
        left: tuple[object, FieldSpec | None],
        right: tuple[object, FieldSpec | None],
        column: int,
    ) -> Condition | None:
        left_operand, left_spec = left
        right_operand, right_spec = right
        if not isinstance(left_operand, Field | Count | Ordered | Const) or not isinstance(
            right_operand, Field | Count | Ordered | Const
        ):
            self.error("type_mismatch", "a list can only follow `in`", column)
            return None
        if isinstance(left_operand, Const) and isinstance(right_operand, Const):
            self.error(
                "constant_condition",
                "this compares two fixed values",
                column,
                "compare a field with a value",
            )
            return None
        kinds = (_operand_kind(left_operand, left_spec), _operand_kind(right_operand, right_spec))
        if "money" in kinds or "list" in kinds:
            self.error(
                "type_mismatch",
                "money and list fields cannot be compared",
                column,
                "use `present(...)` / `absent(...)`, `count(...)` or `contains`",
            )
            return None
        if not _compatible(*kinds):
            self.error(
                "type_mismatch",
                f"cannot compare {_KIND_WORDS[kinds[0]]} with {_KIND_WORDS[kinds[1]]}",
                column,
            )
            return None
        if operator not in ("==", "!=") and "number" not in kinds:
            self.error(
                "type_mismatch", f"`{operator}` compares numbers; use `==` or `!=` here", column
            )
            return None
        for operand, spec in ((left_operand, left_spec), (right_operand, right_spec)):
            other = right_operand if operand is left_operand else left_operand
            if isinstance(other, Const) and spec is not None and not self.fits(spec, other, column):
                return None
        scopes = {
            operand.scope
            for operand in (left_operand, right_operand)
            if isinstance(operand, Field | Count | Ordered)
        }
        if len(scopes) > 1:
            self.error(
                "unsupported",
                "a comparison reads one fact: the context and a term cannot be compared",
                column,
            )
            return None
        return Compare(left_operand, operator, right_operand)

    def fits(self, spec: FieldSpec, value: Const, column: int) -> bool:
        kind = _kind(spec)
        if not _compatible(kind, _const_kind(value.value)):
            self.error(
                "type_mismatch",
                f"`{spec.name}` holds {_KIND_WORDS[kind]}, not `{value.value}`",
                column,
            )
            return False
        if spec.type == "enum" and value.value not in spec.values:
            self.error(
                "bad_enum_value",
                f"`{value.value}` is not a value of `{spec.name}`",
                column,
                suggest(str(value.value), spec.values) or f"values: {', '.join(spec.values)}",
            )
            return False
        return True


_KIND_WORDS = {
    "number": "a number",
    "bool": "true/false",
    "text": "text",
    "enum": "text",
    "money": "money",
    "list": "a list",
    "object": "an object",
}


def _kind(spec: FieldSpec) -> str:
    return {"int": "number", "percent": "number"}.get(spec.type, spec.type)


def _const_kind(value: ConstValue) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "text"


def _operand_kind(operand: object, spec: FieldSpec | None) -> str:
    if isinstance(operand, Count):
        return "number"
    if isinstance(operand, Ordered):
        return "bool"
    if isinstance(operand, Const):
        return _const_kind(operand.value)
    return _kind(spec) if spec is not None else "text"


def _compatible(left: str, right: str) -> bool:
    text = {"text", "enum"}
    return left == right or (left in text and right in text)


def _column(raw: RawOperand) -> int:
    return raw.column


def _is_const(value: object) -> bool:
    return isinstance(value, bool | int | float | str)


def _items(raw: object) -> list[tuple[str, object]]:
    return [(str(key), value) for key, value in raw.items()] if isinstance(raw, dict) else []


def _as_list(raw: object) -> list[object]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]


def _term_fields(condition: Condition | None) -> list[Field]:
    return [field for field in fields_in(condition) if field.scope == "term"]


def _first_term_named(condition: Condition | None) -> str:
    """The first other term type a condition tests for, e.g. `confidentiality`."""
    match condition:
        case TermExists(term_type):
            return term_type
        case Not(item):
            return _first_term_named(item)
        case AllOf(items) | AnyOf(items):
            for item in items:
                if found := _first_term_named(item):
                    return found
    return ""
