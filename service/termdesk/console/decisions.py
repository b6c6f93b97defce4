"""/decisions: the decision log, searchable, and one decision with its trades."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.web import ADMIN_READ, render, signed_in

__all__ = ["detail", "index"]


async def index(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    return render(request, "error.html", {"title": "Decisions", "message": "Not built yet."})


async def detail(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    return render(request, "error.html", {"title": "Decision", "message": "Not built yet."})
