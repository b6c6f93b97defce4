"""/decisions: the decision log, searchable, and one decision with its trades.

The log keeps each decision's package, ruleset version and digest, and violations, but
not the trades offered: a decision's page recomputes them by evaluating the logged
package again with the logged version. Versions are immutable, so this gives what was
offered, unless the stored digest differs or the vocabulary has changed under the
package; then the page says so instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.evaluating import Answer, answer
from termdesk.console.web import ADMIN_READ, Console, console_of, render, signed_in
from termdesk.errors import PackageError, RulesetError, RulesetNotFoundError
from termdesk.jsonview import problems_json
from termdesk.model import Decision
from termdesk.store.base import DecisionNotFoundError, DecisionRecord
from termdesk.vocabulary import check_package

__all__ = ["SHOWN", "detail", "index"]

SHOWN = 200  # rows of a search; a note says when there are more
DECISIONS = tuple(decision.value for decision in Decision)


@dataclass(frozen=True, slots=True)
class _Search:
    """The filters of a search; empty or 0 means any."""

    deal_id: str = ""
    decision: str = ""
    ruleset: str = ""
    version: int = 0

    @classmethod
    def of(cls, params: QueryParams) -> _Search:
        decision = params.get("decision", "")
        if decision and decision not in DECISIONS:
            raise HTTPException(
                400, f"There is no decision `{decision}`; use one of {', '.join(DECISIONS)}."
            )
        version = params.get("version", "").strip()
        if version and not version.isdigit():
            raise HTTPException(
                400, f"The ruleset version must be a whole number, not `{version}`."
            )
        return cls(
            params.get("deal_id", "").strip(),
            decision,
            params.get("ruleset", ""),
            int(version) if version else 0,
        )

    @property
    def filtered(self) -> bool:
        return bool(self.deal_id or self.decision or self.ruleset or self.version)


async def index(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    search = _Search.of(request.query_params)
    rulesets = await console.run(_ruleset_names, console)
    records = await console.run(_search, console, search)
    return render(
        request,
        "decisions.html",
        {
            "search": search,
            "rulesets": rulesets,
            "decisions": DECISIONS,
            "records": records[:SHOWN],
            "capped": len(records) > SHOWN,
            "shown": SHOWN,
        },
    )


def _ruleset_names(console: Console) -> list[str]:
    return [summary.name for summary in console.admin.summaries()]


def _search(console: Console, search: _Search) -> list[DecisionRecord]:
    """The newest matching decisions, one more than shown (to tell that there are more)."""
    if console.admin.decision_log is not None:
        # What was decided a moment ago may still be queued for the store.
        console.admin.decision_log.flush(timeout=1.0)
    return console.admin.store.search_decisions(
        ruleset=search.ruleset,
        deal_id=search.deal_id,
        decision=search.decision,
        ruleset_version=search.version,
        limit=SHOWN + 1,
    )


@dataclass(frozen=True, slots=True)
class _LoggedViolation:
    rule_id: str
    severity: str
    where: str
    field: str


@dataclass
class _Recomputed:
    """The trades recomputed for a logged decision, or why they could not be."""

    result: Answer | None = None
    reason: str = ""
    problems: list[dict[str, str]] = field(default_factory=list)


async def detail(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    record = await console.run(_record, console, request.path_params["decision_id"])
    recomputed = await console.run(_recompute, console, record)
    return render(
        request,
        "decision.html",
        {
            "record": record,
            "package_text": json.dumps(record.package, indent=2, ensure_ascii=False),
            "violations": _logged_violations(record),
            "target": f"{record.ruleset}@{record.ruleset_version}",
            "recomputed": recomputed,
        },
    )


def _record(console: Console, decision_id: str) -> DecisionRecord:
    try:
        return console.admin.store.decision(decision_id)
    except DecisionNotFoundError as error:
        raise HTTPException(404, str(error)) from error


def _recompute(console: Console, record: DecisionRecord) -> _Recomputed:
    name, version = record.ruleset, record.ruleset_version
    try:
        stored = console.admin.get(name, version)
    except RulesetNotFoundError:
        return _Recomputed(
            reason=f"Version {version} of {name} is no longer in the store, so the trades "
            "offered cannot be recomputed."
        )
    if stored.digest != record.ruleset_digest:
        return _Recomputed(
            reason=f"Version {version} of {name} in the store has digest {stored.digest}, not "
            f"{record.ruleset_digest} as when this was decided, so recomputing would not show "
            "what was offered."
        )
    try:
        package = check_package(dict(record.package), console.vocabulary)
    except PackageError as error:
        return _Recomputed(
            reason="The logged package no longer fits the vocabulary, so the trades offered "
            "cannot be recomputed:",
            problems=problems_json(error),
        )
    try:
        with console.evaluators.lease(stored) as evaluator:
            return _Recomputed(answer(evaluator, package, console.vocabulary, console.trade_limits))
    except RulesetError:
        return _Recomputed(
            reason=f"Version {version} of {name} no longer validates against the vocabulary, "
            "so the trades offered cannot be recomputed."
        )


def _logged_violations(record: DecisionRecord) -> list[_LoggedViolation]:
    terms = record.package.get("terms")
    types = [
        str(term.get("type", "")) if isinstance(term, Mapping) else ""
        for term in (terms if isinstance(terms, list) else [])
    ]
    rows = []
    for violation in record.violations:
        index = violation.get("term_index")
        if isinstance(index, int) and 0 <= index < len(types):
            where = f"{types[index]} (term {index + 1})"
        else:
            where = "the deal, or a missing term"
        rows.append(
            _LoggedViolation(
                str(violation.get("rule_id", "")),
                str(violation.get("severity", "")),
                where,
                str(violation.get("field", "")),
            )
        )
    return rows
