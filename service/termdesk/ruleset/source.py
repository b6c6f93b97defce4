"""Reads ruleset YAML into plain data plus the line and column of every key and value."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

__all__ = ["Location", "Path", "SourceDocument", "YamlError", "parse_yaml"]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column in the source text."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """The parsed document and where each part of it was written."""

    data: object
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of `path`, or of its nearest written ancestor."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Location(1, 1))


def _content_start(node: yaml.Node, lines: list[str]) -> Location:
    """Where a value's text begins: after an opening quote, or on the first line of a
    block scalar (`>-`, `|`), so columns inside a condition string point at the text."""
    line, column = node.start_mark.line, node.start_mark.column
    style = getattr(node, "style", None)
    if style in ("'", '"'):
        return Location(line + 1, column + 2)
    if style in ("|", ">"):
        for number in range(line + 1, len(lines)):
            content = lines[number]
            if content.strip():
                return Location(number + 1, len(content) - len(content.lstrip()) + 1)
    return Location(line + 1, column + 1)


class YamlError(ValueError):
    """The text is not YAML; carries the location the parser stopped at."""

    def __init__(self, message: str, location: Location) -> None:
        super().__init__(message)
        self.location = location


def parse_yaml(text: str) -> SourceDocument:
    """Parses one YAML document, keeping locations; raises `YamlError` on bad syntax."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Location(mark.line + 1, mark.column + 1) if mark else Location(1, 1)
        raise YamlError(str(error.problem or error), where) from error
    document = SourceDocument(data=None)
    if node is None:
        return document
    constructor = yaml.SafeLoader("")
    data = _convert(node, (), document, constructor, text.splitlines())
    return SourceDocument(data=data, values=document.values, keys=document.keys)


def _convert(
    node: yaml.Node,
    path: Path,
    document: SourceDocument,
    loader: yaml.SafeLoader,
    lines: list[str],
) -> object:
    document.values[path] = _content_start(node, lines)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node))
            child = (*path, key)
            mark = key_node.start_mark
            document.keys[child] = Location(mark.line + 1, mark.column + 1)
            result[key] = _convert(value_node, child, document, loader, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), document, loader, lines)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node)
