"""The policy owners' web console: `termdesk serve --console-port 8080`.

    server.py     uvicorn on a thread of worker 0
    app.py        routes, error pages, middleware
    web.py        what pages share: services, rendering, sign-in checks, CSRF, audit
    security.py   sessions, sign-in throttle, security headers
    signin.py     /login, /logout
    rulesets.py   /rulesets: list, policy catalog, editor, versions, roll back
    trying.py     /try: evaluate a package, with trades and the counter-proposal
    decisions.py  /decisions: the decision log, and one decision with its trades
    audit.py      /audit: the admin audit log
    evaluating.py evaluators of any stored version (cached, bounded) and one answer

This module stays light: the web stack is imported only when a console is started.
"""

from __future__ import annotations

from termdesk.errors import TermdeskError

__all__ = ["ConsoleError"]


class ConsoleError(TermdeskError):
    """The console cannot start as configured."""
