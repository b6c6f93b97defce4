"""Where the shipped rulesets and vocabulary live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_rulesets_dir", "shipped_vocabulary_path"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_rulesets_dir() -> Path:
    """The `rulesets/` directory: inside the installed wheel, else the checkout's top level."""
    installed = _PACKAGE_DIR / "rulesets"
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent.parent / "rulesets"


def shipped_vocabulary_path() -> Path:
    """The default vocabulary that requests and rulesets are checked against."""
    return shipped_rulesets_dir() / "vocabulary.yaml"
