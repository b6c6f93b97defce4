"""Tokens, roles and the tokens file; and the ruleset diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from termdesk.auth import (
    ADMIN_READ,
    ADMIN_WRITE,
    PermissionDeniedError,
    Principal,
    Role,
    TokenError,
    Tokens,
    UnauthenticatedError,
    hash_token,
)
from termdesk.ruleset.diff import ParameterChange, RuleChange, diff_sources


def tokens_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    return path


class TestTokens:
    def test_a_token_is_known_by_its_hash(self, tmp_path: Path) -> None:
        path = tokens_file(tmp_path, f"policy_owner ana {hash_token('t-ana')}  # ana's\n\n")
        tokens = Tokens.load(path)
        assert Principal("ana", Role.POLICY_OWNER) == tokens.authenticate(
            [("authorization", "Bearer t-ana")]
        )
        assert tokens.admin_enabled

    def test_bootstrap_admin_token(self) -> None:
        tokens = Tokens.load(admin_token="boot")
        assert Principal("admin", Role.POLICY_OWNER) == tokens.authenticate(
            [("Authorization", "bearer boot")]
        )

    def test_evaluator_tokens_alone_leave_the_admin_service_off(self, tmp_path: Path) -> None:
        path = tokens_file(tmp_path, f"evaluator crm {hash_token('t')}\n")
        assert not Tokens.load(path).admin_enabled
        assert not Tokens.load().admin_enabled

    @pytest.mark.parametrize(
        ("metadata", "message"),
        [
            ([], "no bearer token"),
            ([("authorization", "Basic abc")], "not `Bearer <token>`"),
            ([("authorization", "Bearer ")], "not `Bearer <token>`"),
            ([("authorization", "Bearer wrong")], "unknown or revoked token"),
        ],
    )
    def test_unauthenticated(self, metadata: list[tuple[str, str]], message: str) -> None:
        with pytest.raises(UnauthenticatedError, match=message):
            Tokens.load(admin_token="right").authenticate(metadata)

    def test_roles(self) -> None:
        auditor = Principal("audrey", Role.AUDITOR)
        Tokens.authorize(auditor, ADMIN_READ, "ListRulesets")
        with pytest.raises(PermissionDeniedError, match=r"`audrey` \(auditor\) may not call"):
            Tokens.authorize(auditor, ADMIN_WRITE, "PublishRuleset")

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("policy_owner ana plain-token", r"tokens:1: expected `ROLE NAME sha256:HEX`"),
            (f"root ana {hash_token('x')}", "tokens:1: unknown role `root`"),
        ],
    )
    def test_bad_lines_are_refused_with_their_number(
        self, tmp_path: Path, line: str, message: str
    ) -> None:
        with pytest.raises(TokenError, match=message):
            Tokens.load(tokens_file(tmp_path, line))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(TokenError, match="No such file"):
            Tokens.load(tmp_path / "nope")


BEFORE = """
name: demo
parameters:
  limit: {value: 12, description: x}
  gone: 1
rules:
  - {id: a, severity: BLOCK, message: m}
  - {id: b, severity: WARN, message: m}
"""
AFTER = """
name: demo
parameters:
  limit: {value: 6, description: y}
  new: [x, y]
rules:
  - {id: b, severity: REVIEW, message: m2}
  - {id: c, severity: WARN, message: m}
"""


class TestDiff:
    def test_rules_and_parameters(self) -> None:
        diff = diff_sources(BEFORE, AFTER)
        assert ("c",) == diff.added_rules
        assert ("a",) == diff.removed_rules
        assert (RuleChange("b", ("message", "severity")),) == diff.changed_rules
        assert (
            ParameterChange("gone", "1", ""),
            ParameterChange("limit", "12", "6"),
            ParameterChange("new", "", "[x, y]"),
        ) == diff.changed_parameters

    def test_same_source_has_no_difference(self) -> None:
        diff = diff_sources(BEFORE, BEFORE)
        assert ((), (), (), ()) == (
            diff.added_rules,
            diff.removed_rules,
            diff.changed_rules,
            diff.changed_parameters,
        )
