"""Violation message templates: `{field}`, `{context.field}`, `{$parameter}`, `{field|text}`.

A template is parsed once per ruleset; parameters are filled in then, since they do not
change between evaluations. `{field|text}` shows `text` when the field is not set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from termdesk.model import Money, Term, Value

__all__ = ["MessageTemplate", "Placeholder", "placeholders"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NOT_SET = "not set"


@dataclass(frozen=True, slots=True)
class Placeholder:
    """`{name|fallback}`: a term field, `context.<field>` or `$<parameter>`."""

    name: str
    fallback: str


def placeholders(template: str) -> list[Placeholder]:
    """The placeholders of a template, in order."""
    found = []
    for match in _PLACEHOLDER.finditer(template):
        name, _, fallback = (part.strip() for part in match.group(1).partition("|"))
        found.append(Placeholder(name, fallback or _NOT_SET))
    return found


class MessageTemplate:
    """A parsed template: literal text and the placeholders filled per violation."""

    def __init__(self, template: str, parameters: Mapping[str, object]) -> None:
        self._parts: list[str | Placeholder] = []
        position = 0
        for match, placeholder in zip(
            _PLACEHOLDER.finditer(template), placeholders(template), strict=True
        ):
            self._parts.append(template[position : match.start()])
            if placeholder.name.startswith("$"):
                parameter = parameters.get(placeholder.name[1:])
                self._parts.append(_text(parameter, placeholder.fallback))
            else:
                self._parts.append(placeholder)
            position = match.end()
        self._parts.append(template[position:])

    def render(self, term: Term | None, context: Mapping[str, Value]) -> str:
        """The message for one violation on `term` (None for deal-level rules)."""
        text = []
        for part in self._parts:
            if isinstance(part, str):
                text.append(part)
                continue
            if part.name.startswith("context."):
                value = context.get(part.name[len("context.") :])
            else:
                value = term.fields.get(part.name) if term is not None else None
            text.append(_text(value, part.fallback))
        return "".join(text)


def _text(value: object, missing: str) -> str:
    if value is None or value in ("", ()):
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, tuple | list):
        return ", ".join(_text(item, missing) for item in value)
    return str(value)
