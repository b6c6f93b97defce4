"""What the console tests share: a real `termdesk serve --console-port 0` with three
tokens, and a cookie-keeping HTTP client that fills in each form's CSRF token."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from termdesk.auth import hash_token
from test_server import ServerProcess

OWNER, AUDITOR, EVALUATOR = "owner-token-0123456789", "auditor-token-0123", "eval-token-0123456"
NAME = "partner-alliance"


def start_console(workdir: Path, *flags: str) -> tuple[ServerProcess, str]:
    """A server on a fresh SQLite store in `workdir`; returns it and the console's URL."""
    tokens = workdir / "tokens"
    tokens.write_text(
        f"policy_owner ana {hash_token(OWNER)}\nauditor audrey {hash_token(AUDITOR)}\n"
        f"evaluator crm {hash_token(EVALUATOR)}\n",
        encoding="utf-8",
    )
    server = ServerProcess(
        workdir,
        "--tokens-file",
        str(tokens),
        "--console-port",
        "0",
        "--reload-interval",
        "0.2",
        *flags,
    )
    listening = server.wait_for(lambda r: r.get("event") == "listening", 5)
    return server, str(listening["console"]).rstrip("/")


class WebClient:
    """A browser without JavaScript: cookies, redirects, and the CSRF token of the last page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.csrf = ""

    def get(self, path: str) -> tuple[int, str]:
        return self._send(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict[str, str], *, csrf: bool = True) -> tuple[int, str]:
        data = dict(fields)
        if csrf:
            data.setdefault("csrf", self.csrf)
        body = urllib.parse.urlencode(data).encode()
        return self._send(urllib.request.Request(self.base + path, data=body, method="POST"))

    def sign_in(self, token: str) -> tuple[int, str]:
        self.get("/login")
        return self.post("/login", {"token": token})

    def _send(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                status, html = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, html = error.code, error.read().decode()
        found = re.search(r'name="csrf" value="([^"]*)"', html)
        if found:
            self.csrf = found.group(1)
        return status, html
