"""/audit: the admin audit log, newest first, from both channels (gRPC and console)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from termdesk.console.web import ADMIN_READ, console_of, render, signed_in

__all__ = ["SHOWN", "index"]

SHOWN = 500


async def index(request: Request) -> Response:
    signed_in(request, ADMIN_READ)
    console = console_of(request)
    records = await console.run(console.admin.store.audit_records, SHOWN)
    return render(request, "audit.html", {"records": records, "shown": SHOWN})
