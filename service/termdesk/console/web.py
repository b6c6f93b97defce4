"""What every console page shares: its services, rendering, sign-in checks and audit.

Pages call the same `PolicyAdmin` the gRPC RulesetAdmin calls, in this process: one
implementation of validate, publish, impact and activate. Only the presentation differs.
The audit trail is the admin API's too, with `console` as the channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from termdesk.audit import AuditTrail
from termdesk.auth import ADMIN_READ, ADMIN_WRITE, EVALUATE, Principal, Role, Tokens
from termdesk.console.evaluating import VersionEvaluators
from termdesk.console.security import SESSION_COOKIE, LoginThrottle, Session, Sessions
from termdesk.policy import PolicyAdmin
from termdesk.trades import TradeLimits
from termdesk.vocabulary import Limits, Vocabulary

__all__ = [
    "ADMIN_READ",
    "ADMIN_WRITE",
    "EVALUATE",
    "Console",
    "ForbiddenError",
    "SignInRequiredError",
    "allowed_to",
    "audit",
    "console_of",
    "home_page",
    "posted_form",
    "render",
    "signed_in",
]

T = TypeVar("T")

# The largest form the console reads: a ruleset source or a package of a few MB.
MAX_FORM_BYTES = 4 * 1024 * 1024


@dataclass
class Console:
    """The console's state: the services it drives and its signed-in sessions."""

    admin: PolicyAdmin
    tokens: Tokens
    vocabulary: Vocabulary
    tls: bool = False
    limits: Limits = field(default_factory=Limits)  # the server's, for packages tried
    trade_limits: TradeLimits = field(default_factory=TradeLimits)  # the server's too
    sessions: Sessions = field(default_factory=Sessions)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    templates: Jinja2Templates = field(init=False)
    audit: AuditTrail = field(init=False)
    evaluators: VersionEvaluators = field(init=False)

    def __post_init__(self) -> None:
        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("termdesk.console", "templates"),
            autoescape=True,  # every value a user or a ruleset supplies is shown as text
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=environment)
        self.audit = AuditTrail(self.admin.store, "console")
        self.evaluators = VersionEvaluators(self.admin.rulesets.registry, self.vocabulary)

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs blocking work (the store, the engine) off the event loop."""
        return await run_in_threadpool(work, *args, **kwargs)


class SignInRequiredError(Exception):
    """No session: the page sends the browser to /login, then back."""


class ForbiddenError(Exception):
    """A session whose role may not use the page or action."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def session_of(request: Request) -> Session | None:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    return console_of(request).sessions.get(session_id) if session_id else None


def signed_in(request: Request, allowed: frozenset[Role]) -> Session:
    """The request's session, if its role is `allowed`; otherwise raises."""
    session = session_of(request)
    if session is None:
        raise SignInRequiredError()
    if session.principal.role not in allowed:
        roles = " or ".join(sorted(role.value.replace("_", " ") for role in allowed))
        raise ForbiddenError(
            f"You are signed in as {session.principal.name} ({_role_text(session)}); "
            f"this needs a {roles} token."
        )
    return session


async def allowed_to(request: Request, allowed: frozenset[Role], action: str) -> Session:
    """`signed_in` for an action (not a mere page view): a refusal is audited as
    PERMISSION_DENIED."""
    try:
        return signed_in(request, allowed)
    except ForbiddenError:
        session = session_of(request)
        if session is not None:
            await audit(request, session.principal, action, request.url.path, "PERMISSION_DENIED")
        raise


async def audit(
    request: Request,
    principal: Principal | None,
    action: str,
    target: str,
    outcome: str,
    *,
    detail: str = "",
) -> None:
    """Records an admin action from a page, off the event loop (the store may be remote)."""
    console = console_of(request)
    await console.run(console.audit.record, principal, action, target, outcome, detail)


def home_page(principal: Principal) -> str:
    """Where a principal lands: the rulesets, or /try for evaluators (all they may use)."""
    return "/rulesets" if principal.role in ADMIN_READ else "/try"


async def posted_form(request: Request, session: Session | None) -> FormData:
    """The POSTed form, once its size and CSRF token check out (403 otherwise)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, f"The form is larger than {MAX_FORM_BYTES // 1024 // 1024} MB.")
    form = await request.form(max_part_size=MAX_FORM_BYTES)
    submitted = form.get("csrf")
    if session is None or not isinstance(submitted, str) or not session.csrf_ok(submitted):
        if session is not None:
            await audit(request, session.principal, "Form", request.url.path, "CSRF_REFUSED")
        raise HTTPException(
            403, "The form's security token is missing or stale; reload the page and try again."
        )
    return form


def render(
    request: Request,
    template: str,
    context: Mapping[str, object] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    session = session_of(request)
    values: dict[str, object] = {
        "session": session,
        "role": session.principal.role.value if session else "",
        "can_read": session is not None and session.principal.role in ADMIN_READ,
        "can_write": session is not None and session.principal.role in ADMIN_WRITE,
        "csrf": session.csrf if session else "",
        "path": request.url.path,
    }
    values.update(context or {})
    response: HTMLResponse = console_of(request).templates.TemplateResponse(
        request, template, values, status_code=status
    )
    return response


def field_text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _role_text(session: Session) -> str:
    return session.principal.role.value.replace("_", " ")
