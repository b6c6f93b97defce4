"""The web console over real HTTP against `termdesk serve --console-port 0`, without a
browser: how it starts (or refuses to), sign-in, sessions, roles, CSRF, the publish rules
(clean validate first, conflicts shown) and the audit trail. The browser flows are in
tests/test_console_browser.py.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from console_support import AUDITOR, EVALUATOR, NAME, OWNER, WebClient, start_console
from termdesk.store import Store, open_store, sqlite_url
from termdesk.v1 import admin_pb2 as apb
from termdesk.v1 import admin_pb2_grpc as apb_grpc
from test_admin import SHIPPED, bearer, certificate, tightened
from test_server import CONFIDENTIALITY, MANY_VIOLATIONS, ServerProcess

__all__ = ["certificate"]  # a fixture, used here by name

EDIT = f"/rulesets/{NAME}/edit"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    server, url = start_console(tmp_path)
    yield server, url
    server.stop()


def store_of(tmp_path: Path) -> Store:
    return open_store(sqlite_url(tmp_path / "termdesk-data"))


def signed_in(url: str, token: str) -> WebClient:
    client = WebClient(url)
    status, _ = client.sign_in(token)
    assert 200 == status
    return client


def validated(client: WebClient, source: str, base_version: int = 1) -> str:
    """Validates `source` in the editor; returns the publish stamp the page carries."""
    status, html = client.post(
        EDIT, {"source": source, "base_version": str(base_version), "action": "validate"}
    )
    assert 200 == status, html
    found = re.search(r'name="validated" value="([^"]*)"', html)
    assert found is not None
    assert found.group(1), "a clean validate enables Publish"
    return found.group(1)


def publish(
    client: WebClient, source: str, stamp: str, base_version: int = 1, comment: str = "c"
) -> tuple[int, str]:
    fields = {"source": source, "base_version": str(base_version), "comment": comment}
    return client.post(EDIT, {**fields, "action": "publish", "validated": stamp})


def run_serve(workdir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`termdesk serve` expected to refuse its flags and exit at once."""
    return subprocess.run(
        [sys.executable, "-m", "termdesk.cli", "serve", "--port", "0", *flags],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestStart:
    def test_off_unless_asked(self, tmp_path: Path) -> None:
        server = ServerProcess(tmp_path)
        try:
            assert "off" == server.records("listening")[0]["console"]
        finally:
            server.stop()

    def test_refuses_a_non_loopback_address_without_tls(self, tmp_path: Path) -> None:
        done = run_serve(tmp_path, "--console-port", "0", "--console-host", "0.0.0.0")
        assert 1 == done.returncode
        assert "without TLS on 0.0.0.0" in done.stderr
        assert "--console-insecure" in done.stderr

    def test_the_operator_may_accept_a_non_loopback_address(self, tmp_path: Path) -> None:
        server, url = start_console(tmp_path, "--console-host", "0.0.0.0", "--console-insecure")
        try:
            assert url.startswith("http://0.0.0.0:")
            status, html = WebClient(url.replace("0.0.0.0", "127.0.0.1")).get("/login")
            assert (200, True) == (status, "Access token" in html)
        finally:
            server.stop()

    def test_a_busy_port_is_a_clear_error(self, tmp_path: Path) -> None:
        with socket.create_server(("127.0.0.1", 0)) as busy:
            done = run_serve(tmp_path, "--console-port", str(busy.getsockname()[1]))
        assert 1 == done.returncode
        assert "the console cannot listen on 127.0.0.1:" in done.stderr
        assert "Traceback" not in done.stderr

    def test_refuses_file_mode_where_nothing_can_be_published(self, tmp_path: Path) -> None:
        rulesets = Path(__file__).resolve().parent.parent / "rulesets"
        done = run_serve(tmp_path, "--console-port", "0", "--rulesets", str(rulesets))
        assert 1 == done.returncode
        assert "reads them from files" in done.stderr

    def test_under_tls_the_cookie_is_secure(
        self, tmp_path: Path, certificate: tuple[Path, Path]
    ) -> None:
        cert, key = certificate
        server, url = start_console(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
        try:
            assert url.startswith("https://127.0.0.1:")
            context = ssl.create_default_context(cafile=str(cert))
            with urllib.request.urlopen(url + "/login", context=context, timeout=30) as answer:
                cookie = answer.headers["set-cookie"]
                hsts = answer.headers["strict-transport-security"]
            assert "Secure" in cookie
            assert "HttpOnly" in cookie
            assert hsts.startswith("max-age=")
        finally:
            server.stop()


class TestTry:
    def test_a_tried_package_meets_the_servers_limits(self, tmp_path: Path) -> None:
        server, url = start_console(tmp_path, "--max-terms", "1")
        try:
            client = signed_in(url, EVALUATOR)
            client.get("/try")
            package = {"deal_id": "two", "terms": [CONFIDENTIALITY, CONFIDENTIALITY]}
            fields = {"ruleset": f"{NAME}@1", "package": json.dumps(package)}
            status, html = client.post("/try", {**fields, "action": "evaluate"})
            assert (400, True) == (status, "more than the limit of 1" in html)
        finally:
            server.stop()

    def test_a_tried_package_meets_the_servers_trade_limits(self, tmp_path: Path) -> None:
        server, url = start_console(
            tmp_path, "--trades-per-violation", "1", "--trade-engine-calls", "2"
        )
        try:
            client = signed_in(url, EVALUATOR)
            client.get("/try")
            fields = {"ruleset": f"{NAME}@1", "package": json.dumps(MANY_VIOLATIONS)}
            status, html = client.post("/try", {**fields, "action": "evaluate"})
            offered = [block.split("</ul>")[0] for block in html.split('<ul class="trades">')[1:]]
            assert status == 200
            assert "The search stopped at its per-request limit" in html
            assert offered
            assert max(block.count("is-verified") for block in offered) == 1
        finally:
            server.stop()


class TestSignIn:
    def test_a_session_cookie_carries_the_session_and_sign_out_ends_it(
        self, console: tuple[ServerProcess, str]
    ) -> None:
        server, url = console
        client = signed_in(url, OWNER)
        cookie = next(c for c in client.cookies if c.name == "termdesk_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert cookie.value != OWNER
        assert 200 == client.get("/rulesets")[0]
        status, html = client.post("/logout", {})
        assert (200, True) == (status, "Access token" in html)
        status, html = client.get("/rulesets")  # sent back to sign in
        assert "Sign in" in html
        assert "/login" in client.get("/rulesets")[1]
        assert all(OWNER not in line for line in server.lines()), "a token never reaches a log"

    def test_a_wrong_token_is_refused_then_throttled(
        self, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        _, url = console
        client = WebClient(url)
        for _ in range(5):
            status, html = client.sign_in("not-a-token")
            assert (401, True) == (status, "That access token is not valid" in html)
        status, html = client.sign_in(OWNER)  # right, but too late
        assert (429, True) == (status, "Too many failed sign-ins" in html)
        store = store_of(tmp_path)
        try:
            refused = [r for r in store.audit_records() if r.action == "SignIn"]
            assert 5 == len(refused)
            assert {"console"} == {r.channel for r in refused}
        finally:
            store.close()

    def test_sign_in_returns_to_the_page_asked_for_never_to_another_site(
        self, console: tuple[ServerProcess, str]
    ) -> None:
        _, url = console
        client = WebClient(url)
        status, html = client.get(f"/rulesets/{NAME}/versions")  # sent to /login?next=...
        assert (200, True) == (status, "Access token" in html)
        status, html = client.post("/login", {"token": OWNER, "next": f"/rulesets/{NAME}/versions"})
        assert (200, True) == (status, f"Versions of {NAME}" in html)
        other = WebClient(url)
        other.get("/login")
        status, html = other.post("/login", {"token": OWNER, "next": "//evil.example/"})
        assert (200, True) == (status, "<h1>Rulesets</h1>" in html)

    def test_the_sign_in_form_needs_its_own_csrf_token(
        self, console: tuple[ServerProcess, str]
    ) -> None:
        _, url = console
        status, _ = WebClient(url).post("/login", {"token": OWNER, "csrf": "forged"})
        assert 403 == status

    def test_each_role_lands_where_it_may_go(self, console: tuple[ServerProcess, str]) -> None:
        _, url = console
        evaluator = signed_in(url, EVALUATOR)
        assert 200 == evaluator.get("/try")[0]
        status, html = evaluator.get("/rulesets")
        assert (403, True) == (status, "needs a auditor or policy owner token" in html)
        assert 403 == evaluator.get(EDIT)[0]
        auditor = signed_in(url, AUDITOR)
        assert 200 == auditor.get(f"/rulesets/{NAME}")[0]


class TestPublish:
    def test_publish_needs_a_clean_validate_of_the_exact_text(
        self, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        _, url = console
        client = signed_in(url, OWNER)
        client.get(EDIT)
        stamp = validated(client, SHIPPED)
        status, html = publish(client, tightened(9, keep_tests=True), stamp)
        assert (200, True) == (status, "Validate the current text first" in html)
        status, html = publish(client, SHIPPED, stamp, comment="same text, validated")
        assert (200, True) == (status, "Published version 2" in html)

    def test_a_concurrent_publish_is_a_conflict_with_a_link_to_the_diff(
        self, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        _, url = console
        first, second = signed_in(url, OWNER), signed_in(url, OWNER)
        first.get(EDIT)
        second.get(EDIT)
        assert 200 == publish(first, SHIPPED, validated(first, SHIPPED))[0]
        source = SHIPPED + "# a later edit\n"
        status, html = publish(second, source, validated(second, source))
        assert 409 == status
        assert "Someone published version 2" in html
        assert f"/rulesets/{NAME}/versions?from=1&amp;to=2" in html
        store = store_of(tmp_path)
        try:
            assert 2 == store.versions(NAME)[-1].version, "nothing was overwritten"
            outcomes = [r.outcome for r in store.audit_records() if r.action == "PublishRuleset"]
            assert ["ABORTED", "OK"] == outcomes
        finally:
            store.close()

    def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
        self, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        _, url = console
        client = signed_in(url, OWNER)
        stamp = validated(client, SHIPPED)
        fields = {"source": SHIPPED, "base_version": "1", "comment": "c", "validated": stamp}
        status, html = client.post(EDIT, {**fields, "action": "publish"}, csrf=False)
        assert (403, True) == (status, "security token is missing" in html)
        status, _ = client.post(f"/rulesets/{NAME}/versions/1/activate", {"csrf": "stale"})
        assert 403 == status
        store = store_of(tmp_path)
        try:
            assert [1] == [v.version for v in store.versions(NAME)]
        finally:
            store.close()

    def test_an_auditor_is_refused_publish_and_roll_back_even_when_forged(
        self, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        _, url = console
        owner = signed_in(url, OWNER)
        assert 200 == publish(owner, SHIPPED, validated(owner, SHIPPED))[0]
        auditor = signed_in(url, AUDITOR)
        status, html = auditor.get(EDIT)
        assert 200 == status
        assert 'value="publish"' not in html
        assert "readonly" in html
        stamp = validated(auditor, SHIPPED, base_version=2)
        status, _ = publish(auditor, SHIPPED, stamp, base_version=2)
        assert 403 == status
        status, html = auditor.get(f"/rulesets/{NAME}/versions")
        assert 200 == status
        assert "Roll back" not in html
        assert 403 == auditor.post(f"/rulesets/{NAME}/versions/1/activate", {})[0]
        store = store_of(tmp_path)
        try:
            assert (2, 2) == (store.versions(NAME)[-1].version, store.active_versions()[NAME])
            denied = [r for r in store.audit_records() if r.outcome == "PERMISSION_DENIED"]
            assert {("audrey", "PublishRuleset"), ("audrey", "ActivateRulesetVersion")} == {
                (r.actor, r.action) for r in denied
            }
            assert {"console"} == {r.channel for r in denied}
        finally:
            store.close()

    def test_the_audit_log_page_shows_both_channels_to_auditors_only(
        self, console: tuple[ServerProcess, str]
    ) -> None:
        server, url = console
        owner = signed_in(url, OWNER)
        assert 200 == publish(owner, SHIPPED, validated(owner, SHIPPED))[0]
        with grpc.insecure_channel(server.address) as channel:
            stub = apb_grpc.RulesetAdminStub(channel)
            stub.ListRulesets(apb.ListRulesetsRequest(), metadata=bearer(AUDITOR), timeout=30)
        status, html = signed_in(url, AUDITOR).get("/audit")
        assert 200 == status
        body = html.split("<tbody>", 1)[1]
        rows = [
            [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]
            for cells in (
                re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in body.split("</tr>")
            )
            if cells
        ]
        # Time, who, action, target, outcome, channel, detail.
        listed = next(row for row in rows if row[2] == "ListRulesets")
        assert ["audrey (auditor)", "", "OK", "grpc"] == listed[1:2] + listed[3:6]
        published = next(row for row in rows if row[2] == "PublishRuleset")
        assert ["ana (policy owner)", NAME, "OK", "console"] == published[1:2] + published[3:6]
        assert 403 == signed_in(url, EVALUATOR).get("/audit")[0]

    def test_pages_forbid_inline_script(self, console: tuple[ServerProcess, str]) -> None:
        _, url = console
        with urllib.request.urlopen(url + "/login", timeout=30) as answer:
            policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
