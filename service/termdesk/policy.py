"""The policy owner's operations: validate, publish, activate, diff and impact analysis.

Everything the admin API does, without gRPC: a source is validated and its own test
cases run before anything is stored, so a version that fails is never stored and never
active. After a publish or activation the local registry switches at once; other
replicas follow through their poll (`termdesk.reload`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from termdesk.decisionlog import DecisionLog
from termdesk.errors import TermdeskError
from termdesk.evaluator import Evaluator
from termdesk.impact import ImpactReport, analyze_impact
from termdesk.reload import StoreRulesets, checked
from termdesk.ruleset.diagnostics import Diagnostic
from termdesk.ruleset.diff import RulesetDiff, diff_sources
from termdesk.ruleset.model import Ruleset
from termdesk.ruleset.validator import validate_source
from termdesk.store.base import RulesetSummary, StoredVersion
from termdesk.testing import CaseResult, run_tests

__all__ = ["Check", "PolicyAdmin", "RulesetRejectedError"]

MAX_IMPACT_DECISIONS = 10_000


@dataclass(frozen=True, slots=True)
class Check:
    """A source's diagnostics and test results; `ok` when neither has a failure."""

    diagnostics: tuple[Diagnostic, ...]
    tests: tuple[CaseResult, ...]
    ruleset: Ruleset | None

    @property
    def ok(self) -> bool:
        return self.ruleset is not None and all(result.passed for result in self.tests)

    def summary(self) -> str:
        if self.ruleset is None:
            errors = [d for d in self.diagnostics if d.level.value == "error"]
            return f"the ruleset has {len(errors)} error(s); first: {errors[0]}"
        failed = [result for result in self.tests if not result.passed]
        first = failed[0]
        return (
            f"{len(failed)} of {len(self.tests)} test case(s) fail; first: "
            f"`{first.case.name}` (line {first.case.line}): {first.failures[0]}"
        )


class RulesetRejectedError(TermdeskError):
    """A source has errors or failing test cases; `check` has every diagnostic and result."""

    def __init__(self, check: Check) -> None:
        self.check = check
        super().__init__(check.summary())


class PolicyAdmin:
    def __init__(self, rulesets: StoreRulesets, decision_log: DecisionLog | None = None) -> None:
        self.rulesets = rulesets
        self.store = rulesets.store
        self.vocabulary = rulesets.vocabulary
        self.decision_log = decision_log

    def validate(self, source: str, name: str = "") -> Check:
        """Diagnostics and, when the source has no error, the results of its test cases."""
        check = self.diagnose(source, name)
        if check.ruleset is None:
            return check
        return Check(check.diagnostics, tuple(run_tests(check.ruleset)), check.ruleset)

    def diagnose(self, source: str, name: str = "") -> Check:
        """Diagnostics only, without running the test cases; `name`, when given, is the
        ruleset the source must declare."""
        result = validate_source(source, "", self.vocabulary)
        check = Check(result.diagnostics, (), result.ruleset)
        if check.ruleset is not None and name and name != check.ruleset.name:
            mismatch = Diagnostic(
                "name_mismatch",
                f"the request names ruleset `{name}` but the source is `{check.ruleset.name}`",
                line=1,
                column=1,
                help="publish under the name the source declares, or leave the name empty",
            )
            return Check((*check.diagnostics, mismatch), (), None)
        return check

    def _valid(self, source: str, name: str = "", *, run_tests: bool = True) -> Ruleset:
        check = self.validate(source, name) if run_tests else self.diagnose(source, name)
        if not check.ok or check.ruleset is None:
            raise RulesetRejectedError(check)
        return check.ruleset

    def publish(
        self,
        source: str,
        *,
        name: str = "",
        expected_version: int | None,
        comment: str,
        author: str,
    ) -> StoredVersion:
        ruleset = self._valid(source, name)
        stored = self.store.publish(
            ruleset.name,
            source,
            ruleset.digest,
            author=author,
            comment=comment,
            expected_version=expected_version,
        )
        self.rulesets.refresh()
        return stored

    def activate(self, name: str, version: int) -> tuple[StoredVersion, int]:
        """Activates a stored version, once it is known to validate and compile now."""
        stored = self.store.get(name, version)
        checked(stored, self.vocabulary)
        result = self.store.activate(name, version)
        self.rulesets.refresh()
        return result

    def get(self, name: str, version: int = 0) -> StoredVersion:
        return self.store.get(name, version)

    def summaries(self) -> list[RulesetSummary]:
        return self.store.rulesets()

    def versions(self, name: str) -> list[StoredVersion]:
        return self.store.versions(name)

    def diff(self, name: str, from_version: int, to_version: int) -> RulesetDiff:
        before = self.store.get(name, from_version)
        after = self.store.get(name, to_version)
        return diff_sources(before.source, after.source)

    def impact(
        self, source: str, *, since: datetime | None, limit: int
    ) -> tuple[ImpactReport, int]:
        """Replays up to `limit` logged decisions of the draft's ruleset; returns the report
        and the active version it was compared with. The draft must validate; its own
        test cases need not pass yet (seeing what a change does comes first)."""
        ruleset = self._valid(source, run_tests=False)
        baseline = self.rulesets.registry.evaluator(ruleset.name)
        if self.decision_log is not None:
            self.decision_log.flush()
        records = self.store.decisions(
            ruleset.name, since=since, limit=min(limit, MAX_IMPACT_DECISIONS)
        )
        draft = Evaluator(ruleset)
        try:
            report = analyze_impact(records, baseline, draft, self.vocabulary)
        finally:
            draft.close()
        return report, baseline.reference.version
