"""The console's sessions, sign-in throttle, CSRF tokens and security headers.

A session lives in this process's memory (the console runs in one process: worker 0),
keyed by a random id that only the HttpOnly, SameSite=Strict cookie carries. The token a
user signs in with is hashed by `Tokens` and then forgotten: neither the session, the
cookie nor a log line holds it. Every state-changing form carries the session's CSRF
token; the sign-in form, which comes before any session, carries a token that must equal
the one in its own short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from termdesk.auth import Principal

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "LoginThrottle",
    "SecurityHeaders",
    "Session",
    "Sessions",
]

SESSION_COOKIE = "termdesk_session"
LOGIN_CSRF_COOKIE = "termdesk_login_csrf"

# No inline script or style anywhere: every script and style sheet is a file of the package.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires_at: float
    # Signs "this exact text validated cleanly" for the editor's Publish button.
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def csrf_ok(self, submitted: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), submitted.encode())

    def stamp(self, text: str) -> str:
        """A stamp saying this session saw `text` validate with no error."""
        digest = hashlib.sha256(text.encode()).digest()
        return hmac.new(self.signing_key, digest, hashlib.sha256).hexdigest()

    def stamped(self, text: str, stamp: str) -> bool:
        return bool(stamp) and hmac.compare_digest(self.stamp(text), stamp)


class Sessions:
    """Signed-in sessions by id; each ends on sign-out or `lifetime` seconds after sign-in."""

    def __init__(self, lifetime: float = 8 * 3600, clock: Callable[[], float] = time.monotonic):
        self.lifetime = lifetime
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), self._clock() + self.lifetime)
        with self._lock:
            self._expire()
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self._clock():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        now = self._clock()
        for session_id in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[session_id]


class LoginThrottle:
    """At most `attempts` failed sign-ins per client address within `window` seconds."""

    def __init__(
        self, attempts: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        with self._lock:
            failures = self._recent(client)
            if len(failures) < self.attempts:
                return 0
            return max(1, int(failures[0] + self.window - self._clock()) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= self._clock() - self.window:
            failures.popleft()
        return failures


class SecurityHeaders:
    """ASGI middleware: CSP, no framing, no sniffing, no referrer, no caching of pages."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                if self.tls:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
