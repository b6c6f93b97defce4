"""/try: evaluate a package against any stored version and see the whole answer.

The page runs the gRPC Evaluate pipeline (check against the vocabulary, match, decide,
trades and counter-proposal) with the server's package limits, and writes nothing to
the decision log: trying is not deciding. Each evaluation is audited as `TryPackage`;
the package itself is never logged, and a bad one changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.evaluating import Answer, answer
from termdesk.console.security import Session
from termdesk.console.web import (
    EVALUATE,
    Console,
    console_of,
    field_text,
    posted_form,
    render,
    signed_in,
)
from termdesk.errors import PackageError, RulesetError, RulesetNotFoundError
from termdesk.jsonview import parse_json, problems_json
from termdesk.paths import shipped_rulesets_dir
from termdesk.store.base import StoredVersion
from termdesk.vocabulary import check_package

__all__ = ["MAX_PACKAGE_BYTES", "try_page"]

MAX_PACKAGE_BYTES = 1024 * 1024
_EXCERPT = 60  # characters shown either side of where a JSON error is


@dataclass(frozen=True, slots=True)
class _Choice:
    """One stored version in the version picker; `value` is `name@version`."""

    name: str
    version: int
    active: bool
    comment: str

    @property
    def value(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class _Example:
    """A shipped example package; `key` is `ruleset/file stem`."""

    ruleset: str
    name: str
    path: Path

    @property
    def key(self) -> str:
        return f"{self.ruleset}/{self.name}"


@dataclass(frozen=True, slots=True)
class _NotJson:
    """Where the text stops being JSON: the message, the place and the text around it."""

    message: str
    line: int
    column: int
    excerpt: str
    caret: str


@dataclass
class _Try:
    """What the page shows after an action."""

    target: str
    text: str
    example: str = ""
    status: int = 200
    message: str = ""
    not_json: _NotJson | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    result: Answer | None = None


async def try_page(request: Request) -> Response:
    session = signed_in(request, EVALUATE)
    console = console_of(request)
    choices = await console.run(_choices, console)
    examples = await console.run(_examples, sorted({choice.name for choice in choices}))
    if request.method == "GET":
        state = _Try(_default_target(console, choices, request.query_params.get("ruleset", "")), "")
        return _page(request, state, choices, examples)
    form = await posted_form(request, session)
    state = _Try(
        field_text(form, "ruleset"), field_text(form, "package"), field_text(form, "example")
    )
    action = field_text(form, "action")
    if action == "load":
        _load_example(state, examples, choices, console)
    elif action == "evaluate":
        uploaded = await _uploaded(form)
        if uploaded is not None:
            state.text = uploaded
        await console.run(_evaluate, console, session, state)
    else:
        raise HTTPException(400, f"Unknown action `{action}`: use the page's buttons.")
    return _page(request, state, choices, examples)


def _page(
    request: Request, state: _Try, choices: list[_Choice], examples: list[_Example]
) -> Response:
    by_ruleset: dict[str, list[_Choice]] = {}
    for choice in choices:
        by_ruleset.setdefault(choice.name, []).append(choice)
    examples_by_ruleset: dict[str, list[_Example]] = {}
    for example in examples:
        examples_by_ruleset.setdefault(example.ruleset, []).append(example)
    return render(
        request,
        "try.html",
        {
            "state": state,
            "choices": by_ruleset,
            "examples": examples_by_ruleset,
            "max_megabytes": MAX_PACKAGE_BYTES // 1024 // 1024,
        },
        status=state.status,
    )


def _choices(console: Console) -> list[_Choice]:
    """Every stored version of every ruleset, newest first within each ruleset."""
    return [
        _Choice(stored.name, stored.version, stored.active, stored.comment)
        for summary in console.admin.summaries()
        for stored in reversed(console.admin.versions(summary.name))
    ]


def _default_target(console: Console, choices: list[_Choice], asked: str) -> str:
    """The version `asked` for (`name@version`, or a name for its active version), else
    the active version of the default ruleset, else of the first."""
    if any(choice.value == asked for choice in choices):
        return asked
    active = [choice for choice in choices if choice.active]
    for name in (asked, console.admin.rulesets.registry.default_name):
        for choice in active:
            if choice.name == name:
                return choice.value
    return active[0].value if active else ""


def _examples(rulesets: list[str]) -> list[_Example]:
    examples = []
    for name in rulesets:
        directory = shipped_rulesets_dir() / name / "examples"
        if directory.is_dir():
            examples += [
                _Example(name, path.stem, path) for path in sorted(directory.glob("*.json"))
            ]
    return examples


def _load_example(
    state: _Try, examples: list[_Example], choices: list[_Choice], console: Console
) -> None:
    chosen = next((example for example in examples if example.key == state.example), None)
    if chosen is None:
        state.status = 404
        state.message = f"There is no shipped example `{state.example}`; pick one from the list."
        return
    state.text = chosen.path.read_text(encoding="utf-8")
    if _parse_target(state.target)[0] != chosen.ruleset:
        state.target = _default_target(console, choices, chosen.ruleset)


async def _uploaded(form: FormData) -> str | None:
    """The chosen file's text, when a file was chosen; it wins over the text area."""
    upload = form.get("package_file")
    if not isinstance(upload, UploadFile):
        return None
    data = await upload.read(MAX_PACKAGE_BYTES + 1)
    if not data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Not text: shown as not JSON, at the first undecodable byte.
        return data.decode("utf-8", errors="replace")


def _parse_target(target: str) -> tuple[str, int]:
    """(name, version) of `name@version`; a bare name means its active version (0)."""
    name, at, version = target.partition("@")
    if not at:
        return name, 0
    return name, int(version) if version.isdigit() and int(version) > 0 else -1


def _evaluate(console: Console, session: Session, state: _Try) -> None:
    name, version = _parse_target(state.target)
    audited = state.target

    def refuse(status: int, outcome: str, message: str, detail: str = "") -> None:
        state.status = status
        state.message = message
        console.audit.record(session.principal, "TryPackage", audited, outcome, detail or message)

    if len(state.text.encode()) > MAX_PACKAGE_BYTES:
        size = len(state.text.encode()) // 1024
        refuse(
            413,
            "INVALID_ARGUMENT",
            f"The package is {size} KB; the console takes packages of up to "
            f"{MAX_PACKAGE_BYTES // 1024} KB.",
        )
        state.text = ""  # not sent back to the browser
        return
    stored = _stored(console, name, version)
    if stored is None:
        refuse(404, "NOT_FOUND", f"There is no ruleset version `{state.target}` in the store.")
        return
    audited = state.target = f"{stored.name}@{stored.version}"
    if not state.text.strip():
        refuse(400, "INVALID_ARGUMENT", "Paste a package, choose a file or load an example first.")
        return
    try:
        raw = parse_json(state.text)
    except json.JSONDecodeError as error:
        state.not_json = _not_json(state.text, error)
        refuse(
            400,
            "INVALID_ARGUMENT",
            f"The package is not JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
        )
        return
    try:
        package = check_package(raw, console.vocabulary, console.limits)
    except PackageError as error:
        state.problems = problems_json(error)
        count = len(state.problems)
        refuse(
            400,
            "INVALID_ARGUMENT",
            f"The package does not fit the vocabulary: {count} problem(s), each below with "
            "its field.",
            f"{count} problem(s) with the package",
        )
        return
    try:
        with console.evaluators.lease(stored) as evaluator:
            state.result = answer(evaluator, package, console.vocabulary, console.trade_limits)
    except RulesetError:
        refuse(
            409,
            "FAILED_PRECONDITION",
            f"Version {stored.version} of {stored.name} no longer validates against the "
            "vocabulary, so it cannot evaluate; try another version.",
        )
        return
    evaluation, advice = state.result.evaluation, state.result.advice
    console.audit.record(
        session.principal,
        "TryPackage",
        audited,
        evaluation.decision.value,
        f"deal {package.deal_id}: {len(evaluation.violations)} violation(s), "
        f"{sum(trade.verified for trade in advice.trades)} verified trade(s)",
    )


def _stored(console: Console, name: str, version: int) -> StoredVersion | None:
    if not name or version < 0:
        return None
    try:
        return console.admin.get(name, version)
    except RulesetNotFoundError:
        return None


def _not_json(text: str, error: json.JSONDecodeError) -> _NotJson:
    """The error with the text around it; a long line is cut to a window around the place."""
    lines = text.splitlines() or [""]
    line = lines[min(error.lineno, len(lines)) - 1]
    start = max(0, error.colno - 1 - _EXCERPT)
    excerpt = line[start : error.colno - 1 + _EXCERPT].replace("\t", " ")
    return _NotJson(
        error.msg, error.lineno, error.colno, excerpt, " " * (error.colno - 1 - start) + "^"
    )
