"""The console's ASGI application: routes, error pages and middleware.

Pages are rendered on the server (Jinja2, every value escaped); `static/console.js` only
adds comfort (line numbers, copying, disabling Publish when the text changes), so every
flow also works without it and with the keyboard alone.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from termdesk.console import audit, decisions, rulesets, signin, trying
from termdesk.console.security import SecurityHeaders
from termdesk.console.web import (
    Console,
    ForbiddenError,
    SignInRequiredError,
    home_page,
    render,
    see_other,
    session_of,
)
from termdesk.logs import get_logger

__all__ = ["create_app"]

log = get_logger("termdesk.console")


async def home(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return see_other("/login")
    return see_other(home_page(session.principal))


async def _sign_in_first(request: Request, _: Exception) -> Response:
    target = request.url.path if request.method == "GET" else ""
    return see_other(f"/login?next={quote(target)}" if target else "/login")


async def _forbidden(request: Request, error: Exception) -> Response:
    message = error.message if isinstance(error, ForbiddenError) else "Not allowed."
    return render(request, "error.html", {"title": "Not allowed", "message": message}, status=403)


async def _http_error(request: Request, error: Exception) -> Response:
    status = error.status_code if isinstance(error, HTTPException) else 500
    detail = error.detail if isinstance(error, HTTPException) else "Something went wrong."
    titles = {403: "Refused", 404: "Not found", 405: "Not allowed", 413: "Too large"}
    title = titles.get(status, "Error")
    return render(request, "error.html", {"title": title, "message": detail}, status=status)


async def _server_error(request: Request, error: Exception) -> Response:
    log.error("console page failed", path=request.url.path, exc_info=error)
    message = "The console failed on this page; the server log has the details."
    return render(request, "error.html", {"title": "Error", "message": message}, status=500)


def create_app(console: Console) -> Starlette:
    routes = [
        Route("/", home),
        Route("/login", signin.login_form, methods=["GET"]),
        Route("/login", signin.login, methods=["POST"]),
        Route("/logout", signin.logout, methods=["POST"]),
        Route("/rulesets", rulesets.index),
        Route("/rulesets/{name}", rulesets.catalog_page),
        Route("/rulesets/{name}/edit", rulesets.editor, methods=["GET", "POST"]),
        Route("/rulesets/{name}/versions", rulesets.versions),
        Route("/rulesets/{name}/versions/{version:int}/activate", rulesets.roll_back_form),
        Route(
            "/rulesets/{name}/versions/{version:int}/activate",
            rulesets.roll_back,
            methods=["POST"],
        ),
        Route("/try", trying.try_page, methods=["GET", "POST"]),
        Route("/decisions", decisions.index),
        Route("/decisions/{decision_id}", decisions.detail),
        Route("/audit", audit.index),
        Mount("/static", StaticFiles(packages=[("termdesk.console", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            SignInRequiredError: _sign_in_first,
            ForbiddenError: _forbidden,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.console = console
    app.add_middleware(SecurityHeaders, tls=console.tls)
    return app
