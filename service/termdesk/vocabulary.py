"""The vocabulary: term types and their fields, and checking a raw package against them.

`load_vocabulary` reads a vocabulary YAML file (the shipped one is
`rulesets/vocabulary.yaml`) into frozen specs and refuses a malformed file with a
`ValueError` naming the key path. `check_package` turns plain JSON data into a
`TermPackage` with normalized values (whole numbers as `int`, money as `Money`, lists as
tuples) or raises `PackageError` listing every problem found, each with its path, a stable
code, a message and a remedy. Nothing here does I/O besides reading the vocabulary file.
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from termdesk.errors import PackageError, Problem
from termdesk.model import Money, Term, TermPackage, Value
from termdesk.paths import shipped_vocabulary_path

__all__ = [
    "FIELD_TYPES",
    "FieldSpec",
    "Limits",
    "TermTypeSpec",
    "Vocabulary",
    "check_package",
    "default_vocabulary",
    "load_vocabulary",
    "suggest",
]

FIELD_TYPES = ("int", "number", "percent", "bool", "text", "enum", "money", "list")

_MONEY_FORMAT = '{"amount": "1500.00", "currency": "USD"}'


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its type, meaning, unit, allowed values and bounds.

    `type` is one of `FIELD_TYPES`, or `object` for the items of a list of objects (whose
    own fields are in `fields`). A percent always has bounds within 0..1.
    """

    name: str
    type: str
    meaning: str = ""
    unit: str = ""
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    items: FieldSpec | None = None
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TermTypeSpec:
    """One term type, such as `exclusivity`, with its fields."""

    name: str
    meaning: str
    fields: Mapping[str, FieldSpec]


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits on a package, so that one request cannot ask for unbounded work."""

    max_terms: int = 100
    max_list_items: int = 100
    max_text_length: int = 2000
    max_deal_id_length: int = 200


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The deal-context fields and the term types a package may use."""

    context: Mapping[str, FieldSpec]
    terms: Mapping[str, TermTypeSpec]

    def term(self, name: str) -> TermTypeSpec | None:
        """The spec of term type `name`, or None when the vocabulary has no such type."""
        return self.terms.get(name)

    def field(self, term_type: str, name: str) -> FieldSpec | None:
        """The spec of field `name` of `term_type`, or None when either is unknown."""
        spec = self.terms.get(term_type)
        return spec.fields.get(name) if spec is not None else None


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A "did you mean `x`?" hint for a misspelled name, or "" when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else ""


# --- loading -------------------------------------------------------------------------

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FIELD_KEYS = ("type", "meaning", "unit", "values", "min", "max", "items", "fields")
_BOUNDED_TYPES = ("int", "number", "percent", "money")


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Reads a vocabulary file; None means the shipped one (read once, then cached).

    Raises ValueError naming the key path (`terms.exclusivity.fields.mutual.type`) when the
    file is not a well-formed vocabulary, and OSError when it cannot be read.
    """
    if path is None:
        return _shipped_vocabulary()
    return _read_vocabulary(path)


def default_vocabulary() -> Vocabulary:
    """The shipped vocabulary, read once."""
    return _shipped_vocabulary()


@functools.cache
def _shipped_vocabulary() -> Vocabulary:
    return _read_vocabulary(shipped_vocabulary_path())


def _read_vocabulary(path: Path) -> Vocabulary:
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    try:
        return _parse_vocabulary(data)
    except _SpecError as error:
        raise ValueError(f"{path}: {error.key_path}: {error.message}") from None


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key written twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping below reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"key `{key}` appears twice",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _SpecError(Exception):
    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(f"{key_path}: {message}")
        self.key_path = key_path
        self.message = message


def _mapping(value: object, key_path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _SpecError(key_path, "must be a mapping")
    for key in value:
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise _SpecError(key_path, f"`{key}` is not a snake_case name")
    return value


def _check_keys(spec: Mapping[str, object], allowed: Iterable[str], key_path: str) -> None:
    allowed = tuple(allowed)
    for key in spec:
        if key not in allowed:
            hint = suggest(key, allowed)
            where = f"{key_path}.{key}" if key_path else key
            raise _SpecError(where, "unknown key" + (f" ({hint})" if hint else ""))


def _text(spec: Mapping[str, object], key: str, key_path: str) -> str:
    value = spec.get(key, "")
    if not isinstance(value, str):
        raise _SpecError(f"{key_path}.{key}", "must be text")
    return value


def _bound(spec: Mapping[str, object], key: str, key_path: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _SpecError(f"{key_path}.{key}", "must be a number")
    return float(value)


def _parse_vocabulary(data: object) -> Vocabulary:
    root = _mapping(data, "(top level)")
    _check_keys(root, ("context", "terms"), "")
    if "terms" not in root:
        raise _SpecError("terms", "missing")
    context_specs = _mapping(root.get("context") or {}, "context")
    context = {
        name: _parse_field(name, spec, f"context.{name}", item=False)
        for name, spec in context_specs.items()
    }
    terms: dict[str, TermTypeSpec] = {}
    for name, raw_term in _mapping(root["terms"], "terms").items():
        key_path = f"terms.{name}"
        term_spec = _mapping(raw_term, key_path)
        _check_keys(term_spec, ("meaning", "fields"), key_path)
        if "fields" not in term_spec:
            raise _SpecError(f"{key_path}.fields", "missing")
        fields = {
            field_name: _parse_field(
                field_name, spec, f"{key_path}.fields.{field_name}", item=False
            )
            for field_name, spec in _mapping(term_spec["fields"], f"{key_path}.fields").items()
        }
        terms[name] = TermTypeSpec(
            name=name,
            meaning=_text(term_spec, "meaning", key_path),
            fields=MappingProxyType(fields),
        )
    return Vocabulary(context=MappingProxyType(context), terms=MappingProxyType(terms))


def _parse_field(name: str, raw: object, key_path: str, item: bool) -> FieldSpec:
    if not isinstance(raw, dict | Mapping):
        raise _SpecError(key_path, "must be a mapping with at least `type`")
    spec: Mapping[str, object] = raw
    _check_keys(spec, _FIELD_KEYS, key_path)
    kind = spec.get("type")
    allowed_types = (*FIELD_TYPES[:-1], "object") if item else FIELD_TYPES
    if kind not in allowed_types:
        where = "a list item" if item else "a field"
        raise _SpecError(
            f"{key_path}.type",
            f"`{kind}` is not a type of {where}; use one of {', '.join(allowed_types)}",
        )
    assert isinstance(kind, str)

    def only_for(key: str, types: tuple[str, ...]) -> None:
        if key in spec and kind not in types:
            raise _SpecError(f"{key_path}.{key}", f"not allowed on a field of type `{kind}`")

    only_for("values", ("enum",))
    only_for("min", _BOUNDED_TYPES)
    only_for("max", _BOUNDED_TYPES)
    only_for("items", ("list",))
    only_for("fields", ("object",))

    values: tuple[str, ...] = ()
    if kind == "enum":
        raw_values = spec.get("values")
        if (
            not isinstance(raw_values, list)
            or not raw_values
            or not all(isinstance(value, str) and value for value in raw_values)
        ):
            raise _SpecError(f"{key_path}.values", "must be a non-empty list of text")
        if len(set(raw_values)) != len(raw_values):
            raise _SpecError(f"{key_path}.values", "lists a value twice")
        values = tuple(raw_values)

    minimum = _bound(spec, "min", key_path)
    maximum = _bound(spec, "max", key_path)
    if kind == "percent":
        if (minimum is not None and minimum < 0) or (maximum is not None and maximum > 1):
            raise _SpecError(key_path, "a percent is a ratio: its bounds must be within 0..1")
        minimum = 0.0 if minimum is None else minimum
        maximum = 1.0 if maximum is None else maximum
    if minimum is not None and maximum is not None and minimum > maximum:
        raise _SpecError(f"{key_path}.min", "is greater than `max`")

    items: FieldSpec | None = None
    if kind == "list":
        if "items" not in spec:
            raise _SpecError(f"{key_path}.items", "missing: a list says what its items are")
        items = _parse_field(name, spec["items"], f"{key_path}.items", item=True)

    fields: Mapping[str, FieldSpec] = MappingProxyType({})
    if kind == "object":
        raw_fields = _mapping(spec.get("fields"), f"{key_path}.fields")
        if not raw_fields:
            raise _SpecError(f"{key_path}.fields", "an object needs at least one field")
        fields = MappingProxyType(
            {
                field_name: _parse_field(
                    field_name, field_spec, f"{key_path}.fields.{field_name}", item=False
                )
                for field_name, field_spec in raw_fields.items()
            }
        )

    return FieldSpec(
        name=name,
        type=kind,
        meaning=_text(spec, "meaning", key_path),
        unit=_text(spec, "unit", key_path),
        values=values,
        minimum=minimum,
        maximum=maximum,
        items=items,
        fields=fields,
    )


# --- checking a package --------------------------------------------------------------

_PACKAGE_KEYS = ("deal_id", "context", "terms")
_TERM_KEYS = ("type", "fields")
_MONEY_KEYS = ("amount", "currency")
_AMOUNT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,10})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_AMOUNT = 10**20
_MAX_INT = 2**53  # the largest whole number every JSON reader keeps exact
_SHOWN_LENGTH = 60

_DESCRIPTIONS = {
    "int": "a whole number",
    "number": "a number",
    "percent": "a ratio between 0 and 1",
    "bool": "true or false",
    "text": "text",
    "enum": "one of the allowed values",
    "money": "a money object",
    "list": "a list",
    "object": "an object",
}


class _Invalid(enum.Enum):
    """Marks a value that produced a problem (None already means "not set")."""

    VALUE = enum.auto()


_INVALID = _Invalid.VALUE


def check_package(raw: object, vocabulary: Vocabulary, limits: Limits = Limits()) -> TermPackage:
    """Checks plain JSON data against the vocabulary and returns the normalized package.

    Raises PackageError with every problem found (not only the first).
    """
    checker = _Checker(vocabulary, limits)
    package = checker.package(raw)
    if checker.problems or package is None:
        raise PackageError(checker.problems)
    return package


def _clip(text: str) -> str:
    """A user-supplied string made safe for a one-line message: escaped and shortened."""
    if len(text) > _SHOWN_LENGTH:
        text = text[:_SHOWN_LENGTH] + "..."
    if not text.isprintable():
        text = "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
            for char in text
        )
    return text


def _show(value: object) -> str:
    """A user value as it reads in a message: `12.5`, `net`, `true`, a list, an object."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f"`{_clip(value)}`"
    if isinstance(value, int) and abs(value) > 10**_SHOWN_LENGTH:
        return "a very large number"
    if isinstance(value, int | float):
        return f"`{_clip(json.dumps(value))}`"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return "a value of unknown kind"


def _number_text(value: float) -> str:
    """A bound as a person writes it: 0 rather than 0.0."""
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Checker:
    """Walks one raw package, collecting problems and building the normalized values."""

    def __init__(self, vocabulary: Vocabulary, limits: Limits) -> None:
        self.vocabulary = vocabulary
        self.limits = limits
        self.problems: list[Problem] = []

    def problem(self, path: str, code: str, message: str, help: str = "") -> None:
        self.problems.append(Problem(path=path, code=code, message=message, help=help))

    # The package, its context and its terms.

    def package(self, raw: object) -> TermPackage | None:
        if not isinstance(raw, dict | Mapping):
            self.problem(
                "",
                "not_an_object",
                f"the package must be an object, not {_show(raw)}",
                '{"deal_id": "...", "context": {...}, "terms": [...]}',
            )
            return None
        for key in raw:
            if key not in _PACKAGE_KEYS:
                self.problem(
                    _clip(str(key)),
                    "unknown_key",
                    f"unknown key {_show(str(key))} in the package",
                    suggest(str(key), _PACKAGE_KEYS)
                    or "a package has `deal_id`, `context`, `terms`",
                )
        deal_id = self.deal_id(raw.get("deal_id"))
        context = self.context(raw.get("context"))
        terms = self.terms(raw.get("terms"))
        return TermPackage(deal_id=deal_id, context=context, terms=terms)

    def deal_id(self, raw: object) -> str:
        if raw is None or raw == "":
            self.problem(
                "deal_id", "missing_key", "the deal id is missing", "send a non-empty `deal_id`"
            )
            return ""
        if not isinstance(raw, str):
            self.problem("deal_id", "wrong_type", f"`deal_id` must be text, not {_show(raw)}")
            return ""
        if not raw.strip():
            self.problem(
                "deal_id", "missing_key", "the deal id is blank", "send a non-empty `deal_id`"
            )
        elif len(raw) > self.limits.max_deal_id_length:
            self.problem(
                "deal_id",
                "too_long",
                f"`deal_id` is {len(raw)} characters long, "
                f"more than the limit of {self.limits.max_deal_id_length}",
            )
        return raw

    def context(self, raw: object) -> dict[str, Value]:
        if raw is None:
            return {}
        if not isinstance(raw, dict | Mapping):
            self.problem(
                "context",
                "not_an_object",
                f"`context` must be an object of deal facts, not {_show(raw)}",
                'such as {"partner_type": "reseller", "agreement_months": 24}',
            )
            return {}
        return self.fields(raw, self.vocabulary.context, "context", "the deal context has")

    def terms(self, raw: object) -> tuple[Term, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list | tuple):
            self.problem(
                "terms",
                "wrong_type",
                f"`terms` must be a list, not {_show(raw)}",
                'such as [{"type": "exclusivity", "fields": {...}}]',
            )
            return ()
        if len(raw) > self.limits.max_terms:
            self.problem(
                "terms",
                "too_many",
                f"the package has {len(raw)} terms, more than the limit of {self.limits.max_terms}",
            )
            return ()
        terms: list[Term] = []
        for index, raw_term in enumerate(raw):
            term = self.term(raw_term, f"terms[{index}]")
            if term is not None:
                terms.append(term)
        return tuple(terms)

    def term(self, raw: object, path: str) -> Term | None:
        if not isinstance(raw, dict | Mapping):
            self.problem(
                path,
                "not_an_object",
                f"a term must be an object, not {_show(raw)}",
                'such as {"type": "payment_terms", "fields": {"net_days": 30}}',
            )
            return None
        raw_type = raw.get("type")
        spec: TermTypeSpec | None = None
        if raw_type is None or raw_type == "":
            self.problem(
                f"{path}.type",
                "missing_key",
                "the term type is missing",
                "name the term in `type`, such as `exclusivity`",
            )
        elif not isinstance(raw_type, str):
            self.problem(
                f"{path}.type", "wrong_type", f"the term type must be text, not {_show(raw_type)}"
            )
        else:
            spec = self.vocabulary.term(raw_type)
            if spec is None:
                self.problem(
                    f"{path}.type",
                    "unknown_term_type",
                    f"unknown term type {_show(raw_type)}",
                    suggest(raw_type, self.vocabulary.terms),
                )
        for key in raw:
            if key not in _TERM_KEYS:
                name = str(key)
                if spec is not None and name in spec.fields:
                    hint = f"put `{name}` inside `fields`"
                else:
                    hint = suggest(name, _TERM_KEYS) or "a term has `type` and `fields`"
                self.problem(
                    f"{path}.{_clip(name)}",
                    "unknown_key",
                    f"unknown key {_show(name)} in a term",
                    hint,
                )
        raw_fields = raw.get("fields")
        if raw_fields is None:
            raw_fields = {}
        if not isinstance(raw_fields, dict | Mapping):
            self.problem(
                f"{path}.fields",
                "not_an_object",
                f"the term's `fields` must be an object, not {_show(raw_fields)}",
                'such as {"duration_months": 12}',
            )
            return None
        if spec is None:
            return None
        fields = self.fields(raw_fields, spec.fields, f"{path}.fields", f"`{spec.name}` terms have")
        return Term(type=spec.name, fields=fields)

    # Fields and values.

    def fields(
        self, raw: Mapping[Any, object], specs: Mapping[str, FieldSpec], path: str, owner: str
    ) -> dict[str, Value]:
        """Checks an object's fields against `specs`; `owner` starts the unknown-field message."""
        checked: dict[str, Value] = {}
        for key, raw_value in raw.items():
            name = str(key)
            spec = specs.get(name)
            if spec is None:
                self.problem(
                    f"{path}.{_clip(name)}",
                    "unknown_field",
                    f"{owner} no field {_show(name)}",
                    suggest(name, specs),
                )
                continue
            if raw_value is None:
                continue
            value = self.value(raw_value, spec, f"{path}.{name}", f"`{name}`")
            if value is not _INVALID:
                checked[name] = value
        return checked

    def value(self, raw: object, spec: FieldSpec, path: str, label: str) -> Value | _Invalid:
        """Checks one value; `label` names it in messages (`rate`, `tiers[1]`)."""
        kind = spec.type
        if kind == "int":
            return self.int_value(raw, spec, path, label)
        if kind in ("number", "percent"):
            return self.number_value(raw, spec, path, label)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            hint = "send true or false without quotes" if raw in ("true", "false") else ""
            return self.wrong_type(raw, spec, path, label, hint)
        if kind == "text":
            if not isinstance(raw, str):
                return self.wrong_type(raw, spec, path, label)
            if len(raw) > self.limits.max_text_length:
                self.problem(
                    path,
                    "too_long",
                    f"{label} is {len(raw)} characters long, "
                    f"more than the limit of {self.limits.max_text_length}",
                )
                return _INVALID
            return raw
        if kind == "enum":
            return self.enum_value(raw, spec, path, label)
        if kind == "money":
            return self.money_value(raw, spec, path, label)
        if kind == "list":
            return self.list_value(raw, spec, path, label)
        if kind == "object":
            return self.object_value(raw, spec, path, label)
        raise AssertionError(f"unknown field type {kind!r} in the vocabulary")

    def wrong_type(
        self, raw: object, spec: FieldSpec, path: str, label: str, hint: str = ""
    ) -> _Invalid:
        expected = _DESCRIPTIONS[spec.type]
        self.problem(path, "wrong_type", f"{label} must be {expected}, not {_show(raw)}", hint)
        return _INVALID

    def int_value(self, raw: object, spec: FieldSpec, path: str, label: str) -> int | _Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            hint = "send the number without quotes" if _looks_numeric(raw) else ""
            return self.wrong_type(raw, spec, path, label, hint)
        if isinstance(raw, float):
            if not raw.is_integer():
                return self.wrong_type(raw, spec, path, label)
            raw = int(raw)
        if abs(raw) > _MAX_INT:
            self.problem(path, "out_of_range", f"{label} is too large: {_show(raw)}")
            return _INVALID
        return raw if self.in_range(raw, raw, spec, path, label) else _INVALID

    def number_value(self, raw: object, spec: FieldSpec, path: str, label: str) -> float | _Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            hint = "send the number without quotes" if _looks_numeric(raw) else ""
            return self.wrong_type(raw, spec, path, label, hint)
        try:
            number = float(raw)
        except OverflowError:
            self.problem(path, "out_of_range", f"{label} is too large: {_show(raw)}")
            return _INVALID
        if not math.isfinite(number):
            return self.wrong_type(raw, spec, path, label, "send a finite number")
        if spec.type == "percent" and not 0 <= number <= 1:
            hint = f"a ratio, not a percentage: for {_number_text(number)}% send `{number / 100!r}`"
            self.problem(
                path,
                "out_of_range",
                f"{label} must be a ratio between 0 and 1, not {_show(raw)}",
                hint if 1 < number <= 100 else "",
            )
            return _INVALID
        return number if self.in_range(number, raw, spec, path, label) else _INVALID

    def in_range(
        self, number: float | Decimal, written: object, spec: FieldSpec, path: str, label: str
    ) -> bool:
        """Checks the vocabulary's bounds; `written` is the value as the user wrote it."""
        low, high = spec.minimum, spec.maximum
        if (low is None or number >= low) and (high is None or number <= high):
            return True
        shown = _show(written)
        if low is not None and high is not None:
            bounds = f"between {_number_text(low)} and {_number_text(high)}"
            remedy = f"send a value {bounds}"
        elif low is not None:
            bounds = f"at least {_number_text(low)}"
            remedy = f"send {_number_text(low)} or more"
        else:
            assert high is not None
            bounds = f"at most {_number_text(high)}"
            remedy = f"send {_number_text(high)} or less"
        self.problem(path, "out_of_range", f"{label} must be {bounds}, not {shown}", remedy)
        return False

    def enum_value(self, raw: object, spec: FieldSpec, path: str, label: str) -> str | _Invalid:
        if isinstance(raw, str) and raw in spec.values:
            return raw
        allowed = "allowed values: " + ", ".join(f"`{value}`" for value in spec.values)
        if not isinstance(raw, str):
            return self.wrong_type(raw, spec, path, label, allowed)
        self.problem(
            path,
            "bad_enum_value",
            f"{_show(raw)} is not an allowed value of {label}",
            suggest(raw, spec.values) or allowed,
        )
        return _INVALID

    def money_value(self, raw: object, spec: FieldSpec, path: str, label: str) -> Money | _Invalid:
        if not isinstance(raw, dict | Mapping):
            self.problem(
                path,
                "bad_money",
                f"{label} must be a money object, not {_show(raw)}",
                _MONEY_FORMAT,
            )
            return _INVALID
        valid = True
        for key in raw:
            if key not in _MONEY_KEYS:
                name = str(key)
                self.problem(
                    f"{path}.{_clip(name)}",
                    "bad_money",
                    f"a money object has no key {_show(name)}",
                    suggest(name, _MONEY_KEYS) or _MONEY_FORMAT,
                )
                valid = False
        amount = self.amount(raw.get("amount"), f"{path}.amount", label)
        currency = self.currency(raw.get("currency"), f"{path}.currency", label)
        if not valid or amount is None or currency is None:
            return _INVALID
        if not self.in_range(amount, str(amount), spec, f"{path}.amount", label):
            return _INVALID
        return Money(amount=amount, currency=currency)

    def amount(self, raw: object, path: str, label: str) -> Decimal | None:
        if raw is None:
            self.problem(path, "bad_money", f"{label} has no `amount`", _MONEY_FORMAT)
            return None
        if isinstance(raw, bool):
            pass
        elif isinstance(raw, int):
            if abs(raw) < _MAX_AMOUNT:
                return Decimal(raw)
        elif isinstance(raw, float):
            finite = math.isfinite(raw)
            self.problem(
                path,
                "bad_money",
                f"the amount of {label} must be a decimal string, not the number {_show(raw)}",
                f'send the amount as a string, such as "{raw!r}", so that no digits are lost'
                if finite
                else _MONEY_FORMAT,
            )
            return None
        elif isinstance(raw, str) and _AMOUNT.fullmatch(raw):
            return Decimal(raw)
        self.problem(
            path,
            "bad_money",
            f"the amount of {label} must be a decimal string such as `1500.00`, not {_show(raw)}",
            _MONEY_FORMAT,
        )
        return None

    def currency(self, raw: object, path: str, label: str) -> str | None:
        if raw is None:
            self.problem(path, "bad_money", f"{label} has no `currency`", _MONEY_FORMAT)
            return None
        if isinstance(raw, str) and _CURRENCY.fullmatch(raw):
            return raw
        hint = "three upper-case letters, such as `USD`"
        if isinstance(raw, str) and _CURRENCY.fullmatch(raw.upper()):
            hint = f"did you mean `{raw.upper()}`?"
        self.problem(
            path,
            "bad_money",
            f"the currency of {label} must be a three-letter code, not {_show(raw)}",
            hint,
        )
        return None

    def list_value(
        self, raw: object, spec: FieldSpec, path: str, label: str
    ) -> tuple[Value, ...] | _Invalid:
        if not isinstance(raw, list | tuple):
            hint = f'send a list, such as ["{_clip(raw)}"]' if isinstance(raw, str) else ""
            return self.wrong_type(raw, spec, path, label, hint)
        if len(raw) > self.limits.max_list_items:
            self.problem(
                path,
                "too_many",
                f"{label} has {len(raw)} items, "
                f"more than the limit of {self.limits.max_list_items}",
            )
            return _INVALID
        assert spec.items is not None
        name = label.strip("`")
        items: list[Value] = []
        valid = True
        for index, raw_item in enumerate(raw):
            item_path = f"{path}[{index}]"
            item_label = f"`{name}[{index}]`"
            item = self.value(raw_item, spec.items, item_path, item_label)
            if item is _INVALID:
                valid = False
            else:
                items.append(item)
        return tuple(items) if valid else _INVALID

    def object_value(
        self, raw: object, spec: FieldSpec, path: str, label: str
    ) -> dict[str, Value] | _Invalid:
        if not isinstance(raw, dict | Mapping):
            fields = ", ".join(f"`{name}`" for name in spec.fields)
            self.problem(
                path,
                "not_an_object",
                f"{label} must be an object, not {_show(raw)}",
                f"an object with {fields}",
            )
            return _INVALID
        before = len(self.problems)
        checked = self.fields(raw, spec.fields, path, f"the item {label} has")
        return checked if len(self.problems) == before else _INVALID


def _looks_numeric(raw: object) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        float(raw)
    except ValueError:
        return False
    return True
