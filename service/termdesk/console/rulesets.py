"""Ruleset pages: the list, the policy catalog, the editor and the version history.

Validate, Run tests, Analyze impact, Publish and Roll back call `PolicyAdmin`, exactly as
the gRPC RulesetAdmin does. Publish carries the version the editor was opened on, so a
publish by someone else in between is a conflict, shown with a link to the diff; and it
needs a stamp, signed for this session, saying the exact text validated cleanly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.security import Session
from termdesk.console.web import (
    ADMIN_READ,
    ADMIN_WRITE,
    Console,
    allowed_to,
    console_of,
    field_text,
    posted_form,
    render,
    see_other,
    signed_in,
)
from termdesk.errors import RulesetNotFoundError, TermdeskError
from termdesk.policy import Check, RulesetRejectedError
from termdesk.ruleset.diagnostics import Diagnostic, Level
from termdesk.ruleset.diff import diff_sources
from termdesk.ruleset.model import Ruleset
from termdesk.store.base import RulesetSummary, StoredVersion, VersionConflictError
from termdesk.testing import CaseResult
from termdesk.wording import catalog

__all__ = ["catalog_page", "editor", "index", "roll_back", "roll_back_form", "versions"]

IMPACT_LIMIT = 1000


async def index(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    rows = await console.run(_ruleset_rows, console)
    return render(request, "rulesets.html", {"rulesets": rows})


@dataclass(frozen=True, slots=True)
class _RulesetRow:
    summary: RulesetSummary
    active: StoredVersion


def _ruleset_rows(console: Console) -> list[_RulesetRow]:
    return [
        _RulesetRow(summary, console.admin.get(summary.name, summary.active_version))
        for summary in console.admin.summaries()
    ]


async def catalog_page(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    name = request.path_params["name"]
    stored = await console.run(_get, console, name, 0)
    ruleset = await console.run(console.evaluators.ruleset, stored)
    return render(
        request,
        "catalog.html",
        {
            "stored": stored,
            "ruleset": ruleset,
            "rules": catalog(ruleset, console.vocabulary),
            "parameters": _parameters(ruleset),
            "buckets": ruleset.buckets,
        },
    )


def _parameters(ruleset: Ruleset) -> list[tuple[str, str, str]]:
    """(name, value, description) of every parameter."""
    return [
        (
            name,
            ", ".join(map(str, value)) if isinstance(value, tuple) else str(value),
            ruleset.parameter_descriptions.get(name, ""),
        )
        for name, value in ruleset.parameters.items()
    ]


# -- the editor


@dataclass
class _Editor:
    """What the editor page shows after an action."""

    name: str
    source: str
    base_version: int
    comment: str = ""
    check: Check | None = None
    validated_stamp: str = ""
    tests_run: bool = False
    impact: Any = None
    impact_version: int = 0
    message: str = ""
    conflict_latest: int = 0


async def editor(request: Request) -> Response:
    session = signed_in(request, ADMIN_READ)
    console = console_of(request)
    name = request.path_params["name"]
    if request.method == "GET":
        active = await console.run(_get, console, name, 0)
        latest = await console.run(_latest_version, console, name)
        return _editor_page(request, _Editor(name, active.source, latest))
    form = await posted_form(request, session)
    base = field_text(form, "base_version")
    state = _Editor(
        name,
        field_text(form, "source").replace("\r\n", "\n"),
        int(base) if base.isdigit() else 0,
        field_text(form, "comment"),
    )
    stamp = field_text(form, "validated")
    if session.stamped(state.source, stamp):
        state.validated_stamp = stamp  # still the validated text: Publish stays enabled
    action = field_text(form, "action")
    if action == "validate":
        await console.run(_validate, console, session, state)
    elif action == "test":
        await console.run(_run_tests, console, session, state)
    elif action == "impact":
        await console.run(_impact, console, session, state)
    elif action == "publish":
        await allowed_to(request, ADMIN_WRITE, "PublishRuleset")
        published = await console.run(_publish, console, session, state, stamp)
        if published is not None:
            return see_other(f"/rulesets/{name}/versions?published={published}")
    else:
        raise HTTPException(400, f"Unknown action `{action}`: use the editor's buttons.")
    return _editor_page(request, state, status=409 if state.conflict_latest else 200)


def _validate(console: Console, session: Session, state: _Editor) -> None:
    state.check = console.admin.diagnose(state.source, state.name)
    errors = _errors(state.check)
    if state.check.ruleset is not None:
        state.validated_stamp = session.stamp(state.source)
        state.message = "No errors: the draft can be published." + (
            f" {len(state.check.diagnostics)} warning(s) below." if state.check.diagnostics else ""
        )
    else:
        state.message = f"{len(errors)} error(s): fix them, then validate again."
    outcome = "OK" if state.check.ruleset is not None else "INVALID_ARGUMENT"
    console.audit.record(
        session.principal, "ValidateRuleset", state.name, outcome, f"{len(errors)} error(s)"
    )


def _run_tests(console: Console, session: Session, state: _Editor) -> None:
    state.check = console.admin.validate(state.source, state.name)
    state.tests_run = state.check.ruleset is not None
    if state.tests_run:
        state.validated_stamp = session.stamp(state.source)
    failed = [result for result in state.check.tests if not result.passed]
    if state.check.ruleset is None:
        state.message = "The draft has errors, so its test cases cannot run; validate first."
    elif failed:
        state.message = f"{len(failed)} of {len(state.check.tests)} test case(s) fail."
    else:
        state.message = f"All {len(state.check.tests)} test case(s) pass."
    console.audit.record(
        session.principal,
        "RunTests",
        state.name,
        "OK" if state.check.ok else "FAILED_PRECONDITION",
        state.message,
    )


def _impact(console: Console, session: Session, state: _Editor) -> None:
    try:
        state.impact, state.impact_version = console.admin.impact(
            state.source, since=None, limit=IMPACT_LIMIT
        )
    except RulesetRejectedError as error:
        state.check = error.check
        state.message = "The draft has errors, so it cannot be replayed; validate first."
        console.audit.record(session.principal, "AnalyzeImpact", state.name, "INVALID_ARGUMENT")
        return
    changed = len(state.impact.changes)
    state.message = (
        f"Replayed {state.impact.replayed} logged decision(s) against the draft: "
        f"{changed} would be decided differently from active version {state.impact_version}."
    )
    console.audit.record(session.principal, "AnalyzeImpact", state.name, "OK", state.message)


def _publish(console: Console, session: Session, state: _Editor, stamp: str) -> int | None:
    """The version published, or None with the reason in `state`."""
    if not session.stamped(state.source, stamp):
        state.message = (
            "Validate the current text first: Publish is enabled only after a clean validate "
            "of exactly the text being published."
        )
        console.audit.record(
            session.principal, "PublishRuleset", state.name, "FAILED_PRECONDITION", state.message
        )
        return None
    try:
        stored = console.admin.publish(
            state.source,
            name=state.name,
            expected_version=state.base_version,
            comment=state.comment,
            author=session.principal.name,
        )
    except VersionConflictError as error:
        state.conflict_latest = error.latest
        state.message = (
            f"Someone published version {error.latest} after you opened the editor on version "
            f"{state.base_version}. Nothing was published. Compare the versions, merge the "
            "changes into your text, and reload the editor to publish on top of the latest."
        )
        console.audit.record(session.principal, "PublishRuleset", state.name, "ABORTED", str(error))
        return None
    except RulesetRejectedError as error:
        state.check = error.check
        state.tests_run = error.check.ruleset is not None
        state.message = f"Not published: {error.check.summary()}"
        console.audit.record(
            session.principal, "PublishRuleset", state.name, "INVALID_ARGUMENT", state.message
        )
        return None
    console.audit.record(
        session.principal,
        "PublishRuleset",
        state.name,
        "OK",
        f"published version {stored.version} ({stored.digest})",
    )
    return stored.version


def _editor_page(request: Request, state: _Editor, *, status: int = 200) -> Response:
    check = state.check
    diagnostics = list(check.diagnostics) if check else []
    return render(
        request,
        "edit.html",
        {
            "state": state,
            "lines": state.source.split("\n"),
            "diagnostics": sorted(diagnostics, key=lambda d: (d.line, d.column)),
            "marked_lines": {d.line: d.level.value for d in diagnostics},
            "failed_tests": [_failed(r) for r in (check.tests if check else ()) if not r.passed],
            "tests_total": len(check.tests) if check else 0,
        },
        status=status,
    )


@dataclass(frozen=True, slots=True)
class _FailedCase:
    name: str
    line: int
    failures: tuple[str, ...]
    expected: list[str]
    actual: list[str]


def _failed(result: CaseResult) -> _FailedCase:
    expect = result.case.expect
    expected = []
    if expect.decision is not None:
        expected.append(f"decision {expect.decision.value}")
    if expect.violations is not None:
        expected.append("violations " + (", ".join(sorted(expect.violations)) or "none"))
    if expect.includes:
        expected.append("includes " + ", ".join(sorted(expect.includes)))
    if expect.excludes:
        expected.append("excludes " + ", ".join(sorted(expect.excludes)))
    if expect.approvers is not None:
        expected.append("approvers " + (", ".join(expect.approvers) or "none"))
    evaluation = result.evaluation
    fired = sorted({violation.rule_id for violation in evaluation.violations})
    actual = [
        f"decision {evaluation.decision.value}",
        "violations " + (", ".join(fired) or "none"),
        "approvers " + (", ".join(evaluation.required_approvers) or "none"),
    ]
    return _FailedCase(result.case.name, result.case.line, result.failures, expected, actual)


def _errors(check: Check) -> list[Diagnostic]:
    return [d for d in check.diagnostics if d.level is Level.ERROR]


# -- versions, diff and roll back


async def versions(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    name = request.path_params["name"]
    history = await console.run(_versions, console, name)
    numbers = [stored.version for stored in history]
    to_version = _int_param(request, "to", numbers[-1])
    from_version = _int_param(request, "from", numbers[-2] if len(numbers) > 1 else numbers[-1])
    if from_version not in numbers or to_version not in numbers:
        raise HTTPException(404, f"Ruleset {name} has versions {numbers[0]} to {numbers[-1]}.")
    by_number = {stored.version: stored for stored in history}
    before, after = by_number[from_version].source, by_number[to_version].source
    diff = diff_sources(before, after)
    text_diff = list(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            f"version {from_version}",
            f"version {to_version}",
            lineterm="",
        )
    )
    return render(
        request,
        "versions.html",
        {
            "name": name,
            "history": list(reversed(history)),
            "from_version": from_version,
            "to_version": to_version,
            "diff": diff,
            "text_diff": text_diff,
            "published": _int_param(request, "published", 0),
            "activated": _int_param(request, "activated", 0),
        },
    )


async def roll_back_form(request: Request) -> Response:
    signed_in(request, ADMIN_WRITE)
    console = console_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    stored = await console.run(_get, console, name, version)
    active = await console.run(_get, console, name, 0)
    return render(request, "rollback.html", {"stored": stored, "active": active})


async def roll_back(request: Request) -> Response:
    session = signed_in(request, ADMIN_READ)
    await posted_form(request, session)
    await allowed_to(request, ADMIN_WRITE, "ActivateRulesetVersion")
    console = console_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    await console.run(_activate, console, session, name, version)
    return see_other(f"/rulesets/{name}/versions?activated={version}")


def _activate(console: Console, session: Session, name: str, version: int) -> None:
    try:
        _, previous = console.admin.activate(name, version)
    except TermdeskError as error:
        console.audit.record(
            session.principal, "ActivateRulesetVersion", f"{name}@{version}", "FAILED", str(error)
        )
        raise HTTPException(400, f"Version {version} was not activated: {error}") from error
    console.audit.record(
        session.principal,
        "ActivateRulesetVersion",
        f"{name}@{version}",
        "OK",
        f"activated version {version} (was {previous})",
    )


# -- store access that turns "not found" into a 404 page


def _get(console: Console, name: str, version: int) -> StoredVersion:
    try:
        return console.admin.get(name, version)
    except RulesetNotFoundError as error:
        raise HTTPException(404, str(error)) from error


def _versions(console: Console, name: str) -> list[StoredVersion]:
    try:
        return console.admin.versions(name)
    except RulesetNotFoundError as error:
        raise HTTPException(404, str(error)) from error


def _latest_version(console: Console, name: str) -> int:
    """The newest stored version of `name` (the one a publish must name as expected)."""
    latest = {summary.name: summary.latest_version for summary in console.admin.summaries()}
    if name not in latest:
        raise HTTPException(404, f"no ruleset `{name}` in the store")
    return latest[name]


def _int_param(request: Request, key: str, default: int) -> int:
    value = request.query_params.get(key, "")
    return int(value) if value.isdigit() else default
