"""The web console in a real browser: Playwright driving Debian's Chromium against a real
`termdesk serve --console-port 0` on SQLite, with gRPC Evaluate calls beside it.

Covers sign-in, the catalog, editing a threshold, a typo's diagnostic at its line, test
cases, impact on logged deals, publish, roll back, the auditor's view, CSRF, escaping, the
keyboard-only publish flow and the accessibility basics (labels, headings). Screenshots of
the main pages are taken on the way; `TERMDESK_UPDATE_SCREENSHOTS=1 pytest
tests/test_console_browser.py` copies them into docs/console/ for the README.

Chromium comes from Debian (`apt-get install -y chromium`): browser downloads do not work
on these machines, so Playwright is pointed at /usr/bin/chromium.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright

from console_support import AUDITOR, EVALUATOR, NAME, OWNER, start_console
from termdesk.store import open_store, sqlite_url
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from test_admin import SHIPPED, exclusivity_package
from test_server import ServerProcess, evaluate_request

CHROMIUM = os.environ.get("TERMDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    # Root in a container, no GPU, and a closed network: these keep Chromium quiet.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (see the README)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    server, url = start_console(tmp_path)
    yield server, url
    server.stop()


@pytest.fixture
def page(browser: Browser, console: tuple[ServerProcess, str]) -> Iterator[Page]:
    context = browser.new_context(base_url=console[1], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    yield page
    context.close()
    assert [] == dialogs, "no page may run a script that opens a dialog"


def sign_in(page: Page, token: str) -> None:
    page.goto("/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str, tmp_path: Path, *, full_page: bool = False) -> None:
    """Every screenshot is taken; it replaces the README's copy only when asked to."""
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=full_page)
    if os.environ.get("TERMDESK_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, SCREENSHOTS / target.name)


def edit_source(page: Page, source: str) -> None:
    """Replaces the editor's text as a paste would (one `input` event). Playwright's
    `fill` takes about 20 s for the shipped ruleset's 100 KB in Chromium; typing is
    covered by the keyboard-only test."""
    page.get_by_label("Ruleset source").evaluate(
        "(area, text) => { area.value = text;"
        " area.dispatchEvent(new Event('input', {bubbles: true})); }",
        source,
    )


def press(page: Page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def evaluate(server: ServerProcess, package: dict[str, Any]) -> pb.EvaluateResponse:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TermEvaluatorStub(channel)
        response: pb.EvaluateResponse = stub.Evaluate(evaluate_request(package), timeout=30)
        return response


def with_limit(months: int) -> str:
    """The shipped ruleset with another exclusivity limit, its test cases kept."""
    changed = SHIPPED.replace(
        "max_exclusivity_months: {value: 12,", f"max_exclusivity_months: {{value: {months},"
    )
    assert changed != SHIPPED
    return changed


def check_accessibility(page: Page) -> None:
    """Every control has a name (a label, its text or aria-label); headings start at one
    h1 and never skip a level."""
    found = page.evaluate(
        """() => {
        const unnamed = [];
        for (const el of document.querySelectorAll(
                'input:not([type=hidden]), select, textarea, button')) {
            if (el.hidden) continue;
            const name = el.tagName === 'BUTTON' ? el.textContent.trim()
                : (el.labels && el.labels.length ? el.labels[0].textContent.trim()
                   : el.getAttribute('aria-label'));
            if (!name) unnamed.push(el.outerHTML.slice(0, 100));
        }
        const levels = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')]
            .map(h => Number(h.tagName[1]));
        return {unnamed, levels};
    }"""
    )
    assert [] == found["unnamed"], page.url
    levels = found["levels"]
    assert 1 == levels.count(1), page.url
    assert 1 == levels[0], page.url
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), page.url


class TestPolicyOwner:
    def test_sign_in_then_read_the_catalog(self, page: Page, tmp_path: Path) -> None:
        page.goto("/login")
        check_accessibility(page)
        screenshot(page, "login", tmp_path)
        page.get_by_label("Access token").fill("wrong-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid")
        sign_in(page, OWNER)
        expect(page.get_by_role("heading", level=1)).to_have_text("Rulesets")
        row = page.get_by_role("row", name=NAME)
        expect(row).to_contain_text("import")  # the shipped ruleset's first version
        check_accessibility(page)
        screenshot(page, "rulesets", tmp_path)
        page.get_by_role("link", name=NAME, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Policy catalog")
        rule = page.locator("section.rule", has_text="exclusivity.time-limit")
        expect(rule).to_contain_text("at most 12 months")
        expect(rule).to_contain_text("legal")
        expect(rule).to_contain_text("Exclusivity must end on its own")
        parameter = page.get_by_role("row", name="max_exclusivity_months")
        expect(parameter).to_contain_text("12")
        expect(parameter).to_contain_text("longest exclusivity without re-negotiation")
        check_accessibility(page)
        screenshot(page, "catalog", tmp_path)

    def test_edit_validate_publish_evaluate_and_roll_back(
        self, page: Page, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        server, _ = console
        thirteen_months = exclusivity_package("deal-13m", 13)
        assert pb.DECISION_REJECT == evaluate(server, thirteen_months).decision
        sign_in(page, OWNER)
        page.goto(f"/rulesets/{NAME}/edit")
        publish = page.get_by_role("button", name="Publish")
        expect(publish).to_be_disabled()
        edit_source(page, with_limit(13))
        press(page, "Validate")
        expect(page.locator("#result")).to_contain_text("No errors")
        expect(publish).to_be_enabled()
        press(page, "Run tests")  # the ruleset's own boundary case now fails
        expect(page.locator("#result")).to_contain_text("1 of 141 test case(s) fail")
        failing = page.get_by_role("row", name="exclusivity.time-limit: 13 months fires")
        expect(failing).to_contain_text("decision REJECT")  # expected ...
        expect(failing).to_contain_text("decision APPROVE")  # ... and actual
        check_accessibility(page)
        screenshot(page, "edit-tests", tmp_path, full_page=True)
        # The policy owner moves the boundary case to the new limit, and it passes.
        fixed = with_limit(13).replace("13 months fires", "14 months fires")
        fixed = fixed.replace("duration_months: 13, min_", "duration_months: 14, min_")
        edit_source(page, fixed)
        expect(publish).to_be_disabled()  # the text changed since the clean validate
        page.get_by_label("Comment").fill("exclusivity limit 12 -> 13 months")
        press(page, "Run tests")
        expect(page.locator("#result")).to_contain_text("All 141 test case(s) pass")
        press(page, "Publish")
        expect(page.locator("main")).to_contain_text("Published version 2")
        current = page.get_by_role("row", name="2 ana")
        expect(current).to_contain_text("exclusivity limit 12 -> 13 months")
        expect(current).to_contain_text("active")
        check_accessibility(page)
        screenshot(page, "versions", tmp_path)

        answer = evaluate(server, thirteen_months)
        assert (2, pb.DECISION_APPROVE) == (answer.ruleset.version, answer.decision)

        page.get_by_role("link", name="Roll back to version 1").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("version 1?")
        check_accessibility(page)
        page.get_by_role("button", name="Yes, roll back to version 1").click()
        expect(page.locator("main")).to_contain_text("Rolled back: version 1")
        answer = evaluate(server, thirteen_months)
        assert (1, pb.DECISION_REJECT) == (answer.ruleset.version, answer.decision)

    def test_a_typo_shows_its_diagnostic_at_its_line(self, page: Page, tmp_path: Path) -> None:
        lines = SHIPPED.split("\n")
        typo = next(i for i, line in enumerate(lines) if line.strip() == "severity: BLOCK")
        lines[typo] = lines[typo].replace("severity", "severty")
        sign_in(page, OWNER)
        page.goto(f"/rulesets/{NAME}/edit")
        edit_source(page, "\n".join(lines))
        press(page, "Validate")
        line = typo + 1
        diagnostic = page.locator("table.diagnostics tr", has_text="unknown key `severty`")
        expect(diagnostic).to_contain_text(f"line {line}")
        expect(diagnostic).to_contain_text("unknown_key")
        expect(page.locator("#gutter span.mark-error", has_text=str(line)).first).to_be_visible()
        expect(page.get_by_role("button", name="Publish")).to_be_disabled()
        diagnostic.get_by_role("link").click()  # jumps to the line in the editor
        expect(page.get_by_label("Ruleset source")).to_be_focused()
        check_accessibility(page)
        screenshot(page, "edit-diagnostic", tmp_path, full_page=True)

    def test_impact_lists_the_deals_whose_decision_changes(
        self, page: Page, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        server, _ = console
        for months in (3, 9, 12):
            evaluate(server, exclusivity_package(f"deal-{months}m", months))
        sign_in(page, OWNER)
        page.goto(f"/rulesets/{NAME}/edit")
        edit_source(page, with_limit(6))
        press(page, "Analyze impact")
        expect(page.locator("#result")).to_contain_text("2 would be decided differently")
        changes = page.locator("table.impact tbody")
        expect(changes.get_by_role("row", name="deal-9m")).to_contain_text("APPROVE")
        expect(changes.get_by_role("row", name="deal-9m")).to_contain_text("REJECT")
        expect(changes.get_by_role("row", name="deal-12m")).to_contain_text("REJECT")
        expect(changes.get_by_role("row", name="deal-3m")).to_have_count(0)
        check_accessibility(page)
        screenshot(page, "edit-impact", tmp_path, full_page=True)

    def test_a_script_in_a_comment_shows_as_text(self, page: Page) -> None:
        comment = "<script>alert('x')</script> tightened"
        sign_in(page, OWNER)
        page.goto(f"/rulesets/{NAME}/edit")
        edit_source(page, SHIPPED + "# reviewed\n")
        page.get_by_label("Comment").fill(comment)
        press(page, "Validate")
        press(page, "Publish")
        expect(page.get_by_role("row", name="2 ana")).to_contain_text(comment)
        page.goto("/rulesets")
        expect(page.get_by_role("row", name=NAME)).to_contain_text(comment)
        # The page fixture asserts that no dialog opened.

    def test_the_publish_flow_works_with_the_keyboard_alone(self, page: Page) -> None:
        page.goto("/login")
        page.keyboard.type(OWNER)  # the token field has the focus
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Rulesets")
        page.goto(f"/rulesets/{NAME}/edit")
        tab_to(page, "#source")
        page.keyboard.press("Control+End")
        page.keyboard.type("# reviewed with the keyboard\n")
        tab_to(page, "#comment")
        page.keyboard.type("keyboard only")
        tab_to(page, "button[value=validate]")
        page.keyboard.press("Enter")
        expect(page.locator("#result")).to_contain_text("No errors")
        tab_to(page, "#publish")
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_contain_text("Published version 2")
        expect(page.get_by_role("row", name="2 ana")).to_contain_text("keyboard only")


def tab_to(page: Page, selector: str, presses: int = 40) -> None:
    """Presses Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(presses):
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")


class TestTryAndDecisions:
    def test_an_evaluator_tries_a_seed_and_copies_the_counter_proposal(
        self, page: Page, tmp_path: Path
    ) -> None:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        sign_in(page, EVALUATOR)
        expect(page.get_by_role("heading", level=1)).to_have_text("Try a package")
        expect(page.get_by_role("link", name="Rulesets")).to_have_count(0)
        page.get_by_label("Shipped example").select_option(label="seed-open-exclusivity")
        press(page, "Load example")
        expect(page.get_by_label("Package JSON")).to_contain_text("exclusivity")
        press(page, "Evaluate")
        expect(page.locator("main")).to_contain_text("REJECT")
        trades = page.locator("section[aria-labelledby=trades-heading]")
        expect(trades).to_contain_text("If ")
        copy = page.get_by_role("button", name="Copy counter-proposal JSON")
        copy.click()
        expect(page.locator("#counter-proposal-json-status")).to_have_text("Copied.")
        copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
        assert {"exclusivity"} <= {term["type"] for term in copied["terms"]}
        check_accessibility(page)
        page.evaluate("document.getElementById('decision-heading').scrollIntoView()")
        screenshot(page, "try", tmp_path)
        page.get_by_role("button", name="Evaluate the counter-proposal").click()
        expect(page.locator("section[aria-labelledby=decision-heading]")).to_contain_text("APPROVE")

    def test_the_decision_log_is_searched_by_deal(
        self, page: Page, console: tuple[ServerProcess, str], tmp_path: Path
    ) -> None:
        server, _ = console
        for months in (6, 24):
            evaluate(server, exclusivity_package(f"deal-{months}m", months))
        sign_in(page, AUDITOR)
        page.get_by_role("link", name="Decisions").click()
        expect(page.get_by_role("row", name="deal-24m")).to_contain_text("REJECT")
        check_accessibility(page)
        screenshot(page, "decisions", tmp_path)
        page.get_by_label("Deal id").fill("deal-6m")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.decisions tbody tr")).to_have_count(1)
        page.get_by_role("link", name="deal-6m").click()
        expect(page.locator("main")).to_contain_text("APPROVE")
        expect(page.locator("main")).to_contain_text('"deal_id": "deal-6m"')
        check_accessibility(page)
        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_role("row", name="audrey")).to_contain_text("SignIn")
        check_accessibility(page)


class TestAuditor:
    def test_no_publish_control_and_a_forged_publish_is_refused(
        self, page: Page, tmp_path: Path
    ) -> None:
        sign_in(page, AUDITOR)
        page.goto(f"/rulesets/{NAME}/edit")
        expect(page.get_by_role("button", name="Validate")).to_be_visible()
        expect(page.get_by_role("button", name="Publish")).to_have_count(0)
        expect(page.get_by_label("Ruleset source")).not_to_be_editable()
        press(page, "Validate")  # reading is allowed, and gives a stamp
        stamp = page.locator("#validated").get_attribute("value")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        forged = page.request.post(
            f"/rulesets/{NAME}/edit",
            form={
                "csrf": csrf or "",
                "source": SHIPPED,
                "base_version": "1",
                "validated": stamp or "",
                "action": "publish",
            },
        )
        assert 403 == forged.status
        page.goto(f"/rulesets/{NAME}/versions")
        expect(page.get_by_role("link", name="Roll back to version 1")).to_have_count(0)
        store = open_store(sqlite_url(tmp_path / "termdesk-data"))
        try:
            assert [1] == [v.version for v in store.versions(NAME)]
            denied = store.audit_records()[0]
            assert ("audrey", "PublishRuleset", "PERMISSION_DENIED", "console") == (
                denied.actor,
                denied.action,
                denied.outcome,
                denied.channel,
            )
        finally:
            store.close()

    def test_a_post_without_its_csrf_token_is_refused(self, page: Page, tmp_path: Path) -> None:
        sign_in(page, OWNER)
        refused = page.request.post(
            f"/rulesets/{NAME}/versions/1/activate", form={"confirm": "yes"}
        )
        assert 403 == refused.status
        assert "security token" in refused.text()
