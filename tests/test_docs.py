"""The operator guide's configuration reference lists every flag of `termdesk serve` and
the environment variable each one names (read from the argparse parser itself)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from termdesk.cli import _parser

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operator-guide.md"


def serve_parser() -> argparse.ArgumentParser:
    [commands] = [
        action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)
    ]
    parser: argparse.ArgumentParser = commands.choices["serve"]
    return parser


def reference() -> str:
    """The configuration reference section of the operator guide."""
    text = GUIDE.read_text(encoding="utf-8")
    return text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]


SERVE_OPTIONS = [
    action for action in serve_parser()._actions if action.option_strings and action.dest != "help"
]


class TestConfigurationReference:
    @pytest.mark.parametrize("action", SERVE_OPTIONS, ids=lambda action: action.dest)
    def test_flag_is_documented(self, action: argparse.Action) -> None:
        """Each flag has a row of its own in the reference table."""
        [flag] = [option for option in action.option_strings if option.startswith("--")]
        assert re.search(rf"^\| `{re.escape(flag)}` \|", reference(), re.MULTILINE), flag

    @pytest.mark.parametrize("action", SERVE_OPTIONS, ids=lambda action: action.dest)
    def test_environment_variable_is_documented(self, action: argparse.Action) -> None:
        """Every environment variable a flag's help names is in the reference."""
        names = re.findall(r"\b(?:TERMDESK|OTEL)_[A-Z_]+", action.help or "")
        assert names, f"{action.option_strings}: its help names no environment variable"
        for name in names:
            assert f"`{name}" in reference(), name

    def test_the_reference_is_found(self) -> None:
        """The section exists and holds the table (a renamed heading fails here)."""
        assert "| `--port` | `TERMDESK_PORT` |" in reference()
