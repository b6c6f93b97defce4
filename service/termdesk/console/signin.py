"""/login and /logout: a token in, a session cookie out; wrong tokens are throttled."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from termdesk.auth import UnauthenticatedError
from termdesk.console.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from termdesk.console.web import (
    audit,
    console_of,
    field_text,
    home_page,
    posted_form,
    render,
    see_other,
    session_of,
)

__all__ = ["login", "login_form", "logout"]

_MAX_TOKEN_CHARS = 512


async def login_form(request: Request) -> Response:
    return _login_page(request, "", status=200)


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    submitted = field_text(form, "csrf")
    if not cookie or not secrets.compare_digest(cookie, submitted):
        return _login_page(request, "The sign-in form expired; please sign in again.", status=403)
    client = request.client.host if request.client else "unknown"
    wait = console.throttle.retry_after(client)
    if wait:
        return _login_page(
            request, f"Too many failed sign-ins. Try again in {wait} seconds.", status=429
        )
    token = field_text(form, "token").strip()[:_MAX_TOKEN_CHARS]
    try:
        principal = console.tokens.principal(token)
    except UnauthenticatedError:
        console.throttle.failed(client)
        await audit(request, None, "SignIn", "console", "UNAUTHENTICATED")
        return _login_page(
            request, "That access token is not valid. Check it and try again.", status=401
        )
    session_id, _ = console.sessions.open(principal)
    await audit(request, principal, "SignIn", "console", "OK")
    response = see_other(_safe_next(field_text(form, "next")) or home_page(principal))
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=console.tls,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    session = session_of(request)
    await posted_form(request, session)
    if session is not None:
        console_of(request).sessions.close(request.cookies.get(SESSION_COOKIE, ""))
        await audit(request, session.principal, "SignOut", "console", "OK")
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _login_page(request: Request, error: str, *, status: int) -> Response:
    login_csrf = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "login_csrf": login_csrf,
            "next": _safe_next(request.query_params.get("next", "")),
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        login_csrf,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=console_of(request).tls,
        path="/login",
    )
    return response


def _safe_next(target: str) -> str:
    """A page of this console to return to after sign-in; never another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return ""
    return target
