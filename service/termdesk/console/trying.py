"""/try: evaluate a package against any stored version and see the whole answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.web import EVALUATE, render, signed_in

__all__ = ["try_page"]


async def try_page(request: Request) -> Response:
    signed_in(request, EVALUATE)
    return render(request, "error.html", {"title": "Try a package", "message": "Not built yet."})
