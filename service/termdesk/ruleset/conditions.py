"""Conditions: the leaf syntax policy owners write, and the checked tree rules are made of.

A condition in YAML is either a leaf string or a combinator:

    duration_months <= $max_exclusivity_months      comparison (==, !=, <, <=, >, >=)
    renewal_rate <= rate                            two fields of the same term
    reversion == 'non_exclusive'                    text and enum values are quoted
    verification in ['activation', 'staged']        enum membership
    segments contains 'uk'                          list membership
    purpose matches '.*marketing.*'                 regular expression (whole value)
    count(segments) <= 2                            list size (0 when absent)
    present(duration_months) / absent(basis)        field presence (empty text or list is absent)
    ascending(tiers.threshold)                      ordered lists of objects
    non_decreasing(tiers.rate)
    audit_rights                                    a bool field that is true
    context.agreement_months > 12                   the deal's context
    revenue_share.rate <= 0.15                      some other term of that type satisfies it
    {all: [...]}, {any: [...]}, {not: ...}          combinators
    {exists: data_handling} / {exists: {term: partner_commitments, where: ...}}
    {absent_term: mfn}                              no term of that type

Semantics, shared by the engine compiler and the reference interpreter: a comparison
involving an absent field is false, and `not` is plain logical negation.

`matches` uses durable_rules' own pattern language: the whole value must match; letters,
digits, spaces, `.` (any character, line breaks included), `*`, `+`, `?`, `|`, `( )`,
classes like `[a-z]` and counts like `{2}`. The engine cannot negate a pattern, so
`matches` may only appear where it is tested positively: in `when`, or under `not` in
`require`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "Absent",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "Const",
    "ConstValue",
    "Contains",
    "Count",
    "Field",
    "Lacks",
    "LeafSyntaxError",
    "Matches",
    "NoTerm",
    "NoneOf",
    "Not",
    "OneOf",
    "Operand",
    "Ordered",
    "Present",
    "RawCall",
    "RawLeaf",
    "RawList",
    "RawLiteral",
    "RawOperand",
    "RawParam",
    "RawRef",
    "Scope",
    "TermExists",
    "describe",
    "fact_key",
    "fields_in",
    "flip",
    "parse_leaf",
    "to_nnf",
]

# --- the leaf syntax ---------------------------------------------------------------------


class LeafSyntaxError(ValueError):
    """A leaf string does not parse; `column` is 0-based within the string."""

    def __init__(self, message: str, column: int, help_text: str = "") -> None:
        super().__init__(message)
        self.column = column
        self.help = help_text


@dataclass(frozen=True, slots=True)
class RawRef:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class RawParam:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class RawLiteral:
    value: bool | int | float | str
    column: int


@dataclass(frozen=True, slots=True)
class RawList:
    items: tuple[RawLiteral | RawParam, ...]
    column: int


@dataclass(frozen=True, slots=True)
class RawCall:
    function: str
    argument: RawRef
    column: int


RawOperand: TypeAlias = RawRef | RawParam | RawLiteral | RawList | RawCall

COMPARISON_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
FUNCTIONS = ("count", "present", "absent", "ascending", "non_decreasing")


@dataclass(frozen=True, slots=True)
class RawLeaf:
    """A parsed, unresolved leaf: `left` alone (a bool field or a call), or `left op right`."""

    left: RawOperand
    operator: str = ""
    right: RawOperand | None = None


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
    |(?P<string>'[^']*'|"[^"]*")
    |(?P<param>\$[A-Za-z_]\w*)
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<punct>[\[\](),])
    |(?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)

_Token = tuple[str, str, int]  # kind, text, column


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            column = position + len(text[position:]) - len(text[position:].lstrip())
            raise LeafSyntaxError(f"unexpected `{text[column : column + 10]}`", column)
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


class _LeafParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise LeafSyntaxError("condition ends too early", len(self.text))
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        _, value, column = self.take()
        if value != text:
            raise LeafSyntaxError(f"expected `{text}`, found `{value}`", column)

    def parse(self) -> RawLeaf:
        if not self.tokens:
            raise LeafSyntaxError("empty condition", 0)
        left = self.operand()
        token = self.peek()
        if token is None:
            return RawLeaf(left)
        kind, value, column = self.take()
        if kind == "op":
            right: RawOperand = self.operand()
        elif value == "in":
            right = self.value_list() if self.peek_is("[") else self.param()
        elif value in ("contains", "matches"):
            right = self.operand()
        else:
            raise LeafSyntaxError(
                f"expected an operator after the operand, found `{value}`",
                column,
                "use one of ==, !=, <, <=, >, >=, in, contains, matches; "
                "combine conditions with `all:` / `any:` / `not:` in YAML",
            )
        trailing = self.peek()
        if trailing is not None:
            raise LeafSyntaxError(
                f"unexpected `{trailing[1]}` after the condition",
                trailing[2],
                "a leaf holds one comparison; combine conditions with `all:` or `any:`",
            )
        return RawLeaf(left, "in" if value == "in" else value, right)

    def peek_is(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == text

    def param(self) -> RawParam:
        kind, value, column = self.take()
        if kind != "param":
            raise LeafSyntaxError(f"expected a list or a `$parameter`, found `{value}`", column)
        return RawParam(value[1:], column)

    def value_list(self) -> RawList:
        _, _, column = self.take()  # "["
        items: list[RawLiteral | RawParam] = []
        while not self.peek_is("]"):
            item = self.operand()
            if not isinstance(item, RawLiteral | RawParam):
                raise LeafSyntaxError("a list holds quoted values, numbers or parameters", column)
            items.append(item)
            if not self.peek_is("]"):
                self.expect(",")
        self.take()
        return RawList(tuple(items), column)

    def operand(self) -> RawOperand:
        kind, value, column = self.take()
        if kind == "number":
            return RawLiteral(float(value) if "." in value else int(value), column)
        if kind == "string":
            return RawLiteral(value[1:-1], column)
        if kind == "param":
            return RawParam(value[1:], column)
        if kind == "punct" and value == "[":
            self.index -= 1
            return self.value_list()
        if kind == "word":
            if value in ("true", "false"):
                return RawLiteral(value == "true", column)
            if self.peek_is("("):
                return self.call(value, column)
            return RawRef(value, column)
        raise LeafSyntaxError(f"unexpected `{value}`", column)

    def call(self, function: str, column: int) -> RawCall:
        if function not in FUNCTIONS:
            raise LeafSyntaxError(
                f"unknown function `{function}`", column, f"functions: {', '.join(FUNCTIONS)}"
            )
        self.take()  # "("
        kind, value, arg_column = self.take()
        if kind != "word":
            raise LeafSyntaxError(f"`{function}` takes a field name", arg_column)
        self.expect(")")
        return RawCall(function, RawRef(value, arg_column), column)


def parse_leaf(text: str) -> RawLeaf:
    """Parses one leaf condition string; raises `LeafSyntaxError` with a column."""
    return _LeafParser(text).parse()


# --- the checked tree ----------------------------------------------------------------------

Scope: TypeAlias = Literal["term", "context"]
ConstValue: TypeAlias = bool | int | float | str


@dataclass(frozen=True, slots=True)
class Field:
    """A field of the term being matched (`term`) or of the deal context (`context`)."""

    scope: Scope
    name: str


@dataclass(frozen=True, slots=True)
class Count:
    """The number of items of a list field; 0 when the list is absent."""

    scope: Scope
    name: str


@dataclass(frozen=True, slots=True)
class Ordered:
    """Whether `item_field` of a list of objects ascends (`strict`) or never decreases."""

    scope: Scope
    name: str
    item_field: str
    strict: bool


@dataclass(frozen=True, slots=True)
class Const:
    """A literal value; `param` names the ruleset parameter it came from, if any."""

    value: ConstValue
    param: str = ""


Operand: TypeAlias = Field | Count | Ordered | Const


@dataclass(frozen=True, slots=True)
class Compare:
    left: Operand
    operator: str
    right: Operand


@dataclass(frozen=True, slots=True)
class OneOf:
    """The field is present and equals one of the values."""

    field: Field
    values: tuple[Const, ...]


@dataclass(frozen=True, slots=True)
class NoneOf:
    """The field is present and equals none of the values (only made by negation)."""

    field: Field
    values: tuple[Const, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    """The list field is present and holds the value."""

    field: Field
    value: Const


@dataclass(frozen=True, slots=True)
class Lacks:
    """The list field is present and does not hold the value (only made by negation)."""

    field: Field
    value: Const


@dataclass(frozen=True, slots=True)
class Matches:
    """The text field is present and the whole of it matches the pattern."""

    field: Field
    pattern: str


@dataclass(frozen=True, slots=True)
class Present:
    field: Field


@dataclass(frozen=True, slots=True)
class Absent:
    field: Field


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


@dataclass(frozen=True, slots=True)
class TermExists:
    """Some term of `term_type` (other than the one being matched) satisfies `where`."""

    term_type: str
    where: Condition | None = None


@dataclass(frozen=True, slots=True)
class NoTerm:
    """No term of `term_type` satisfies `where` (only made by negation)."""

    term_type: str
    where: Condition | None = None


Condition: TypeAlias = (
    Compare
    | OneOf
    | NoneOf
    | Contains
    | Lacks
    | Matches
    | Present
    | Absent
    | AllOf
    | AnyOf
    | Not
    | TermExists
    | NoTerm
)

_FLIPPED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def flip(operator: str) -> str:
    """The comparison operator that holds exactly when `operator` does not (values present)."""
    return _FLIPPED[operator]


def fact_key(operand: Field | Count | Ordered) -> str:
    """The key under which the fact projection stores this operand's value."""
    if isinstance(operand, Count):
        return f"{operand.name}__n"
    if isinstance(operand, Ordered):
        kind = "asc" if operand.strict else "nondesc"
        return f"{operand.name}__{operand.item_field}__{kind}"
    return operand.name


def _negate(condition: Condition) -> Condition:
    """Negation pushed down to the leaves; absent fields make comparisons false."""
    match condition:
        case Not(item):
            return to_nnf(item)
        case AllOf(items):
            return AnyOf(tuple(_negate(item) for item in items))
        case AnyOf(items):
            return AllOf(tuple(_negate(item) for item in items))
        case TermExists(term_type, where):
            return NoTerm(term_type, to_nnf(where) if where else None)
        case NoTerm(term_type, where):
            return TermExists(term_type, to_nnf(where) if where else None)
        case Present(field):
            return Absent(field)
        case Absent(field):
            return Present(field)
        case OneOf(field, values):
            return AnyOf((Absent(field), NoneOf(field, values)))
        case NoneOf(field, values):
            return AnyOf((Absent(field), OneOf(field, values)))
        case Contains(field, value):
            return AnyOf((Absent(field), Lacks(field, value)))
        case Lacks(field, value):
            return AnyOf((Absent(field), Contains(field, value)))
        case Compare(left, operator, right):
            absences: list[Condition] = [
                Absent(side) for side in (left, right) if isinstance(side, Field)
            ]
            flipped = Compare(left, flip(operator), right)
            return AnyOf((*absences, flipped)) if absences else flipped
        case Matches():
            raise ValueError("a regular expression match cannot be negated in the engine")
    raise AssertionError(condition)


def to_nnf(condition: Condition) -> Condition:
    """The same condition with every `Not` pushed into the leaves (negation normal form)."""
    match condition:
        case Not(item):
            return _negate(item)
        case AllOf(items):
            return AllOf(tuple(to_nnf(item) for item in items))
        case AnyOf(items):
            return AnyOf(tuple(to_nnf(item) for item in items))
        case TermExists(term_type, where):
            return TermExists(term_type, to_nnf(where) if where else None)
        case NoTerm(term_type, where):
            return NoTerm(term_type, to_nnf(where) if where else None)
    return condition


def fields_in(condition: Condition | None) -> list[Field]:
    """The fields of the matched term that a condition reads, in order, without repeats."""
    found: list[Field] = []

    def visit(node: Condition | None) -> None:
        match node:
            case None | TermExists() | NoTerm():
                return
            case AllOf(items) | AnyOf(items):
                for item in items:
                    visit(item)
            case Not(item):
                visit(item)
            case Compare(left, _, right):
                for side in (left, right):
                    if isinstance(side, Field | Count | Ordered):
                        add(Field(side.scope, side.name))
            case (
                OneOf(field)
                | NoneOf(field)
                | Contains(field)
                | Lacks(field)
                | Matches(field)
                | Present(field)
                | Absent(field)
            ):
                add(field)

    def add(field: Field) -> None:
        if field not in found:
            found.append(field)

    visit(condition)
    return found


def other_terms_in(condition: Condition | None) -> list[tuple[str, Condition | None]]:
    """The (term type, where) of every other term a condition looks for, in order."""
    match condition:
        case TermExists(term_type, where) | NoTerm(term_type, where):
            return [(term_type, where)]
        case AllOf(items) | AnyOf(items):
            return [found for item in items for found in other_terms_in(item)]
        case Not(item):
            return other_terms_in(item)
    return []


def describe(condition: Condition | None) -> str:
    """The condition in the leaf syntax, for explanations (parameters shown by name)."""
    match condition:
        case None:
            return ""
        case AllOf(items):
            return "(" + " and ".join(describe(item) for item in items) + ")"
        case AnyOf(items):
            return "(" + " or ".join(describe(item) for item in items) + ")"
        case Not(item):
            return f"not {describe(item)}"
        case TermExists(term_type, where):
            return f"exists {term_type}" + (f" where {describe(where)}" if where else "")
        case NoTerm(term_type, where):
            return f"no {term_type}" + (f" where {describe(where)}" if where else "")
        case Present(field):
            return f"present({_name(field)})"
        case Absent(field):
            return f"absent({_name(field)})"
        case OneOf(field, values):
            return f"{_name(field)} in [{', '.join(_value(v) for v in values)}]"
        case NoneOf(field, values):
            return f"{_name(field)} not in [{', '.join(_value(v) for v in values)}]"
        case Contains(field, value):
            return f"{_name(field)} contains {_value(value)}"
        case Lacks(field, value):
            return f"{_name(field)} lacks {_value(value)}"
        case Matches(field, pattern):
            return f"{_name(field)} matches '{pattern}'"
        case Compare(left, operator, right):
            return f"{_operand(left)} {operator} {_operand(right)}"
    raise AssertionError(condition)


def _name(field: Field) -> str:
    return f"context.{field.name}" if field.scope == "context" else field.name


def _value(value: Const) -> str:
    if value.param:
        return f"${value.param}"
    if isinstance(value.value, bool):
        return "true" if value.value else "false"
    return f"'{value.value}'" if isinstance(value.value, str) else str(value.value)


def _operand(operand: Operand) -> str:
    match operand:
        case Const():
            return _value(operand)
        case Count(scope, name):
            return f"count({_name(Field(scope, name))})"
        case Ordered(scope, name, item_field, strict):
            function = "ascending" if strict else "non_decreasing"
            return f"{function}({_name(Field(scope, name))}.{item_field})"
    return _name(operand)
