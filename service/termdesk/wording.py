"""Rules in plain words: the policy catalog page read by sales reps, approvers and legal.

This module owns the wording of a checked ruleset for people who do not read the rule
language: what each rule applies to, what it checks, when it applies, and each trade it
offers, generated from the rule's structure and the vocabulary (field types, units, enum
values), never from rule ids. Numbers that come from a ruleset parameter are shown with the
parameter's name, so a policy owner sees where they come from. Everything returned is plain
text; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from termdesk.model import Money, Value
from termdesk.ruleset.conditions import (
    Absent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    Contains,
    Count,
    Field,
    Lacks,
    Matches,
    NoneOf,
    Not,
    NoTerm,
    OneOf,
    Operand,
    Ordered,
    Present,
    TermExists,
)
from termdesk.ruleset.model import Change, Rule, Ruleset, TradeOption
from termdesk.vocabulary import FieldSpec, Vocabulary

__all__ = ["RuleWording", "catalog", "describe_condition", "describe_rule"]


@dataclass(frozen=True, slots=True)
class RuleWording:
    """One rule in plain words, for one row of the policy catalog."""

    rule_id: str
    applies_to: str  # "Each exclusivity term" / "The deal as a whole"
    checks: str  # "The exclusivity's duration months must be at most 12 months (...)."
    when: str  # "" or "Only when the payment terms' net days is less than 30 days (...)."
    severity: str  # the rule's severity value, such as "BLOCK"
    approver: str
    rationale: str
    trades: tuple[str, ...]  # each trade option of the rule in words


def catalog(ruleset: Ruleset, vocabulary: Vocabulary) -> list[RuleWording]:
    """Every rule of the ruleset in words, in rule order."""
    return [describe_rule(rule, ruleset, vocabulary) for rule in ruleset.rules]


def describe_rule(rule: Rule, ruleset: Ruleset, vocabulary: Vocabulary) -> RuleWording:
    """One rule in words: its subject, requirement, condition and trades."""
    words = _Words(vocabulary, rule.term)
    if rule.require is not None:
        checks = _sentence(words.render(rule.require, must=True))
    elif rule.when is not None:
        # No requirement: the rule is broken whenever its condition holds.
        checks = _sentence(words.render(Not(rule.when), must=True))
    else:
        checks = "Always flagged."
    when = ""
    if rule.when is not None:
        when = _sentence("only when " + describe_condition(rule.when, vocabulary, rule.term))
    applies_to = f"Each {_term_label(rule.term)} term" if rule.term else "The deal as a whole"
    return RuleWording(
        rule_id=rule.id,
        applies_to=applies_to,
        checks=checks,
        when=when,
        severity=rule.severity.value,
        approver=rule.approver,
        rationale=rule.rationale.strip(),
        trades=tuple(_trade_text(trade, ruleset, vocabulary) for trade in rule.trades),
    )


def describe_condition(condition: Condition, vocabulary: Vocabulary, term_type: str | None) -> str:
    """A condition as a plain statement ("the payment terms' net days is less than 30 days
    (parameter standard_net_days)"), no capital and no full stop; `term_type` is the term
    the condition is written on (None: the deal)."""
    return _Words(vocabulary, term_type).render(condition, must=False)


# --- words for names and values ------------------------------------------------------------

_VOWELS = frozenset("aeiouy")
_ACRONYM_AN = frozenset("AEFHILMNORSX")  # letters whose spoken name starts with a vowel


def _label(name: str) -> str:
    """A snake_case name as words; a word with no vowel reads as an acronym (mfn: MFN)."""
    words = name.split("_")
    return " ".join(w.upper() if w and not _VOWELS & set(w) else w for w in words)


def _term_label(term_type: str | None) -> str:
    return _label(term_type) if term_type else "deal"


def _article(label: str) -> str:
    first = label.split(" ", 1)[0]
    if first.isupper():
        return "an" if first[0] in _ACRONYM_AN else "a"
    return "an" if first[0] in "aeiou" else "a"


def _possessive(noun: str) -> str:
    return f"{noun}'" if noun.endswith("s") else f"{noun}'s"


def _singular(label: str) -> str:
    """The last word of a plural label made singular, by the common English endings."""
    head, _, last = label.rpartition(" ")
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("ia"):
        last = last[:-1] + "on"  # criteria: criterion
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    return f"{head} {last}" if head else last


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _value_text(value: Value, spec: FieldSpec | None) -> str:
    """A value as a reader writes it: yes/no, 30%, 12 months, enum values as words."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, tuple):
        return _list_text(value, spec.items if spec is not None else None)
    if isinstance(value, Mapping):
        fields = spec.fields if spec is not None else {}
        return ", ".join(f"{_label(k)} {_value_text(v, fields.get(k))}" for k, v in value.items())
    if isinstance(value, str):
        if spec is not None and spec.type == "text":
            return f'"{value}"'
        return value.replace("_", " ")
    if spec is not None and spec.type == "percent":
        return f"{value * 100:.10g}%"
    text = _number(value)
    if spec is not None and spec.unit:
        unit = spec.unit.replace("_", " ")
        return f"{text} {_singular(unit) if value == 1 else unit}"
    return text


def _list_text(items: tuple[Value, ...], spec: FieldSpec | None) -> str:
    """List items as words; numbers with a unit carry it once: "30, 60 and 90 days"."""
    if not items:
        return "none"
    if spec is not None and spec.unit and all(_is_number(item) for item in items):
        unit = spec.unit.replace("_", " ")
        return f"{_and([_value_text(item, None) for item in items])} {unit}"
    if spec is not None and spec.type == "text":
        return ", ".join(str(item).replace("_", " ") for item in items)
    return ", ".join(_value_text(item, spec) for item in items)


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _const_text(const: Const, spec: FieldSpec | None) -> str:
    text = _value_text(const.value, spec)
    return f"{text} (parameter {const.param})" if const.param else text


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- conditions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Predicate:
    """What a leaf says of its subject, in the four forms a sentence needs."""

    bare: str  # after "must": "be at most 12"
    third: str  # a statement: "is at most 12"
    neg_bare: str  # after "must": "not be at most 12"
    neg_third: str  # "is not at most 12"

    def form(self, must: bool, negated: bool) -> str:
        if must:
            return "must " + (self.neg_bare if negated else self.bare)
        return self.neg_third if negated else self.third


def _be(rest: str) -> _Predicate:
    return _Predicate(f"be {rest}", f"is {rest}", f"not be {rest}", f"is not {rest}")


def _verb(bare: str, third: str, rest: str) -> _Predicate:
    return _Predicate(
        f"{bare} {rest}",
        f"{third} {rest}",
        f"not {bare} {rest}",
        f"{'does' if third.endswith('s') else 'do'} not {bare} {rest}",
    )


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One simple statement: `owner` ("the exclusivity", or "" for "it"), an optional
    field of it, and the predicate."""

    owner: str
    field: str
    predicate: _Predicate
    negated: bool = False

    def subject(self, pronoun: bool) -> str:
        if self.field:
            return f"{'its' if pronoun else _possessive(self.owner)} {self.field}"
        return "it" if pronoun else self.owner

    def negate(self) -> _Leaf:
        return _Leaf(self.owner, self.field, self.predicate, not self.negated)


_COMPARISONS = {
    "<=": "at most",
    ">=": "at least",
    "<": "less than",
    ">": "more than",
    "==": "",
    "!=": "",
}
_COUNTS = {"<=": "at most", ">=": "at least", "<": "fewer than", ">": "more than", "==": "exactly"}
_MIRRORED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


class _Words:
    """Renders conditions written on `term_type` (None: the deal) with the vocabulary."""

    def __init__(self, vocabulary: Vocabulary, term_type: str | None) -> None:
        self.vocabulary = vocabulary
        self.term_type = term_type
        # Inside `exists`: the other term, named "it"; None at the rule's own level.
        self.other: str | None = None

    # The public entry: a whole condition as text.

    def render(self, condition: Condition, must: bool, nested: bool = False) -> str:
        part = self.part(condition, must, nested)
        return part if isinstance(part, str) else _join_leaves([part], must, "and")

    # Names and specs.

    def owner_of(self, field: Field | Count | Ordered) -> str:
        if field.scope == "context":
            return "the deal"
        if self.other is not None:
            return ""
        return f"the {_term_label(self.term_type)}" if self.term_type else "the term"

    def spec(self, field: Field | Count | Ordered) -> FieldSpec | None:
        if field.scope == "context":
            return self.vocabulary.context.get(field.name)
        term = self.other if self.other is not None else self.term_type
        return self.vocabulary.field(term, field.name) if term else None

    def reference(self, operand: Operand, beside: Field | Count | Ordered) -> str:
        """An operand named on the right of a comparison (`beside` is on the left)."""
        if isinstance(operand, Const):
            return _const_text(operand, self.spec(beside))
        if isinstance(operand, Field):
            owner = self.owner_of(operand)
            same = owner == self.owner_of(beside)
            return f"{'its' if same or not owner else _possessive(owner)} {_label(operand.name)}"
        label = _label(operand.name)
        field = f"number of {label}" if isinstance(operand, Count) else label
        return _Leaf(self.owner_of(operand), field, _be("")).subject(pronoun=False)

    # Combinators and leaves.

    def part(self, condition: Condition, must: bool, nested: bool) -> _Leaf | str:
        """A leaf (merged later with its neighbours) or finished text."""
        match condition:
            case AllOf(items):
                return self.combine(_flatten(AllOf, items), must, "and", nested)
            case AnyOf(items):
                return self.combine(_flatten(AnyOf, items), must, "or", nested)
            case Not(item):
                inner = self.part(item, must=False, nested=True)
                if isinstance(inner, _Leaf):
                    return inner.negate()
                lead = "it must not be that" if must else "it is not the case that"
                return f"{lead} {inner}"
        return self.leaf(condition)

    def combine(self, items: Sequence[Condition], must: bool, joiner: str, nested: bool) -> str:
        if joiner == "or" and must:
            # Alternatives: each is a statement, one of which must hold.
            parts = [self.part(item, must=False, nested=True) for item in items]
            if _one_subject(parts):
                return _join_leaves([p for p in parts if isinstance(p, _Leaf)], True, "or")
            texts = _grouped(parts, must=False, joiner="or")
            return "at least one of these must hold: " + "; ".join(texts)
        parts = [self.part(item, must=must, nested=True) for item in items]
        if joiner == "or":
            texts = _grouped(parts, must=must, joiner=joiner)
            if not nested:
                return "at least one of these holds: " + "; ".join(texts)
            return "either " + ", or ".join(texts)
        # Simple statements first, so that a list of alternatives ends the sentence.
        leaves = [p for p in parts if isinstance(p, _Leaf)]
        others = [p for p in parts if isinstance(p, str)]
        texts = _grouped([*leaves, *others], must=must, joiner=joiner)
        if len(others) > 1 and any(";" in text for text in others):
            return "all of these: " + "; ".join(f"({text})" for text in texts)
        return _and(texts, serial=bool(others))

    def leaf(self, condition: Condition) -> _Leaf:
        match condition:
            case Compare(left, operator, right):
                return self.compare(left, operator, right)
            case OneOf(field, values) | NoneOf(field, values):
                spec = self.spec(field)
                texts = [_const_text(v, spec) for v in values]
                rest = texts[0] if len(texts) == 1 else "one of " + _and(texts, word="or")
                leaf = _Leaf(self.owner_of(field), _label(field.name), _be(rest))
                return leaf.negate() if isinstance(condition, NoneOf) else leaf
            case Contains(field, value) | Lacks(field, value):
                spec = self.spec(field)
                item = spec.items if spec is not None else None
                predicate = _verb("include", "includes", _const_text(value, item))
                leaf = _Leaf(self.owner_of(field), _label(field.name), predicate)
                return leaf.negate() if isinstance(condition, Lacks) else leaf
            case Matches(field, pattern):
                predicate = _verb("match", "matches", f'the pattern "{pattern}"')
                return _Leaf(self.owner_of(field), _label(field.name), predicate)
            case Present(field) | Absent(field):
                predicate = _verb("state", "states", f"the {_label(field.name)}")
                leaf = _Leaf(self.owner_of(field), "", predicate)
                return leaf.negate() if isinstance(condition, Absent) else leaf
            case TermExists(term_type, where) | NoTerm(term_type, where):
                leaf = _Leaf("the deal", "", self.exists(term_type, where))
                return leaf.negate() if isinstance(condition, NoTerm) else leaf
        raise AssertionError(condition)

    def exists(self, term_type: str, where: Condition | None) -> _Predicate:
        label = _term_label(term_type)
        if term_type == self.term_type and self.other is None:
            noun = f"another {label} term"
        else:
            noun = f"{_article(label)} {label} term"
        if where is not None:
            inner = _Words(self.vocabulary, self.term_type)
            inner.other = term_type
            noun += " where " + inner.render(where, must=False, nested=True)
        return _verb("include", "includes", noun)

    def compare(self, left: Operand, operator: str, right: Operand) -> _Leaf:
        if isinstance(left, Const) and not isinstance(right, Const):
            left, operator, right = right, _MIRRORED[operator], left
        if isinstance(left, Const) and isinstance(right, Const):
            words = _COMPARISONS[operator] or ("not" if operator == "!=" else "")
            text = f"{_const_text(left, None)} is {words} {_const_text(right, None)}"
            return _Leaf("it", "", _be(f"true that {' '.join(text.split())}"))
        negated = operator == "!="
        if isinstance(left, Ordered):
            item = _label(left.item_field)
            order = "above" if left.strict else "at least"
            predicate = _verb("have", "have", f"each {item} {order} the previous one")
            leaf = _Leaf(self.owner_of(left), _label(left.name), predicate)
            truth = not (isinstance(right, Const) and right.value is False)
            return leaf if truth != negated else leaf.negate()
        if isinstance(left, Count) and isinstance(right, Const):
            return self.count(left, operator, right)
        assert not isinstance(left, Const)
        label = _label(left.name)
        field = f"number of {label}" if isinstance(left, Count) else label
        value = self.reference(right, left)
        words = _COMPARISONS[operator]
        leaf = _Leaf(self.owner_of(left), field, _be(f"{words} {value}".strip()))
        return leaf.negate() if negated else leaf

    def count(self, left: Count, operator: str, right: Const) -> _Leaf:
        label = _label(left.name)
        amount = right.value
        noun = _singular(label) if amount == 1 else label
        number = _number(amount) if isinstance(amount, int | float) else str(amount)
        parameter = f" (parameter {right.param})" if right.param else ""
        words = _COUNTS.get(operator, "exactly")
        predicate = _verb("list", "lists", f"{words} {number} {noun}{parameter}")
        leaf = _Leaf(self.owner_of(left), "", predicate)
        return leaf.negate() if operator == "!=" else leaf


def _flatten(kind: type[AllOf] | type[AnyOf], items: Sequence[Condition]) -> list[Condition]:
    """Nested all-in-all (or any-in-any) read as one list."""
    flat: list[Condition] = []
    for item in items:
        if isinstance(item, kind):
            flat.extend(_flatten(kind, item.items))
        else:
            flat.append(item)
    return flat


def _same_subject(one: _Leaf, other: _Leaf) -> bool:
    return (one.owner, one.field) == (other.owner, other.field)


def _one_subject(parts: Sequence[_Leaf | str]) -> bool:
    leaves = [p for p in parts if isinstance(p, _Leaf)]
    return len(leaves) == len(parts) and len({(p.owner, p.field) for p in leaves}) == 1


def _and(texts: Sequence[str], word: str = "and", serial: bool = False) -> str:
    if len(texts) <= 1:
        return "".join(texts)
    comma = "," if serial else ""
    return ", ".join(texts[:-1]) + f"{comma} {word} {texts[-1]}"


def _join_leaves(leaves: Sequence[_Leaf], must: bool, joiner: str, pronoun: bool = False) -> str:
    """Leaves with one subject: "the exclusivity must list ... and list ..."."""
    first = leaves[0]
    subject = first.subject(pronoun or not first.owner)
    forms = [leaf.predicate.form(must, leaf.negated) for leaf in leaves]
    if must:
        forms = [forms[0], *(form.removeprefix("must ") for form in forms[1:])]
    serial = any(" and " in form or " or " in form for form in forms)
    return f"{subject} {_and(forms, word=joiner, serial=serial)}"


def _grouped(parts: Sequence[_Leaf | str], must: bool, joiner: str) -> list[str]:
    """Neighbouring leaves about the same subject merged; "its" for the same owner again."""
    texts: list[str] = []
    group: list[_Leaf] = []
    previous_owner: str | None = None
    for part in [*parts, ""]:
        if isinstance(part, _Leaf) and group and _same_subject(part, group[0]):
            group.append(part)
            continue
        if group:
            owner = group[0].owner
            pronoun = owner == previous_owner and owner != "the deal"
            texts.append(_join_leaves(group, must, joiner, pronoun))
            previous_owner = owner
            group = []
        if isinstance(part, _Leaf):
            group = [part]
        elif part:
            texts.append(part)
            previous_owner = None
    return texts


# --- trades --------------------------------------------------------------------------------


def _trade_text(trade: TradeOption, ruleset: Ruleset, vocabulary: Vocabulary) -> str:
    """One trade option as a sentence: its summary, the changes it makes, or its manual text."""
    texts = [trade.summary, trade.manual, _changes_text(trade.changes, ruleset, vocabulary)]
    return " ".join(_sentence(text) for text in texts if text.strip())


def _changes_text(changes: Sequence[Change], ruleset: Ruleset, vocabulary: Vocabulary) -> str:
    phrases: list[str] = []
    index = 0
    while index < len(changes):
        change = changes[index]
        if change.op != "set_field":
            phrases.append(_change_text(change, ruleset, vocabulary))
            index += 1
            continue
        # Neighbouring settings of one term read as one phrase.
        run = [change]
        while (
            index + len(run) < len(changes)
            and changes[index + len(run)].op == "set_field"
            and changes[index + len(run)].term_type == change.term_type
        ):
            run.append(changes[index + len(run)])
        settings = [_setting(item, vocabulary) for item in run]
        owner = _possessive(f"the {_term_label(change.term_type)}")
        phrases.append(f"set {owner} {_and(settings)}")
        index += len(run)
    return _and(phrases)


def _setting(change: Change, vocabulary: Vocabulary) -> str:
    if change.from_field:
        target = f"its {_label(change.from_field)}"
    else:
        target = _value_text(change.value, vocabulary.field(change.term_type, change.field))
        if change.param:
            target += f" (parameter {change.param})"
    return f"{_label(change.field)} to {target}"


def _change_text(change: Change, ruleset: Ruleset, vocabulary: Vocabulary) -> str:
    label = _term_label(change.term_type)
    if change.op == "remove_term":
        return f"remove the {label} term"
    if change.op == "remove_field":
        return f"clear {_possessive('the ' + label)} {_label(change.field)}"
    fields: dict[str, Value] = {**ruleset.defaults.get(change.term_type, {}), **change.fields}
    listed = "; ".join(
        f"{_label(name)}: {_value_text(value, vocabulary.field(change.term_type, name))}"
        for name, value in fields.items()
    )
    return f"add {_article(label)} {label} term" + (f" ({listed})" if listed else "")
