"""The console in a real browser (Debian's Chromium driven by Playwright) on the real stack:
web, two workers, beat and both simulators as processes.

Each page is photographed at 1280×800 under ``screenshots/`` (git-ignored; ``SCREENSHOTS_DIR``
moves it). Chromium comes from the system (``/usr/bin/chromium``: ``make test`` installs it
with apt where it can); Playwright never downloads a browser. Without it these tests skip
locally and fail under ``CI=true``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dispatcher.demo import generate_recipients
from dispatcher.loader import estimate
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack, StackOptions
from tests.conftest import missing_service
from tests.e2e.conftest import FAST_POLLING

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", Path(__file__).parents[2] / "screenshots"))
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalStack]:
    """One real stack for the module's browser scenarios."""
    redis.Redis.from_url(redis_url).flushdb()
    options = StackOptions(redis_url=redis_url, dispatch=FAST_POLLING, workers=2)
    with LocalStack(tmp_path_factory.mktemp("console-stack"), options) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system Chromium, headless."""
    if not CHROMIUM.exists():
        missing_service(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, stack: LocalStack) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the stack's web app."""
    context = browser.new_context(
        viewport=VIEWPORT, base_url=f"http://127.0.0.1:{stack.web_port}", accept_downloads=True
    )
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def shoot(page: Page, name: str) -> None:
    """Photograph the page as the reader sees it (1280×800)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def sign_in(page: Page, token: str) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))


def test_whole_flow(page: Page, stack: LocalStack, tmp_path: Path) -> None:
    """Sign in, upload, estimate, create, start, pause, resume, reach 100 %, download."""
    recipients = generate_recipients(tmp_path / "clients.csv", 120, seed=7)
    expected = estimate(
        stack.settings, recipients, provider="timetochat", template="Bonjour {first_name} !"
    )
    page.goto("/console/")
    shoot(page, "sign-in")
    sign_in(page, stack.api_token)
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Recipients file").set_input_files(str(recipients))
    expect(page.get_by_role("button", name="{first_name}")).to_be_visible()
    page.get_by_label("Message").fill("Bonjour {first_name} !")
    expect(page.locator("#counter")).to_contain_text("GSM-7")
    page.get_by_label("Provider").select_option(label="TimeToChat")
    page.get_by_label("Sender").fill(TIMETOCHAT_ACCOUNT.senders[0])
    page.get_by_label("Campaign name").fill("Soldes <d'hiver>")
    # Whatever the hour the suite runs at: quiet hours are tested in tests/e2e/test_audience.py.
    page.get_by_label("Any time (transactional)").check()
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#est-rows")).to_have_text(str(expected.rows))
    expect(page.locator("#est-valid")).to_have_text(str(expected.valid))
    expect(page.locator("#est-duplicates")).to_have_text(str(expected.duplicates))
    shoot(page, "new-campaign")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/console/campaigns/\d+$"))
    expect(page.get_by_role("heading", name="Soldes <d'hiver>")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#campaign-state")).to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_be_enabled()
    expect(page.get_by_role("button", name="Start")).to_be_disabled()
    page.get_by_role("button", name="Resume").click()
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100.0", timeout=120_000)
    expect(page.locator("#campaign-state")).to_have_text("completed", timeout=30_000)
    shoot(page, "campaign")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download results").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == expected.valid
    assert {"first_name", "phone (file)", "state", "reason", "reply"} <= set(rows[0])
    assert all(row["state"] in {"delivered", "undeliverable", "failed", "unknown"} for row in rows)
    page.goto("/console/")
    expect(page.get_by_role("link", name="Soldes <d'hiver>")).to_be_visible()
    shoot(page, "campaigns")


def test_file_without_phone_column_shows_the_error(
    page: Page, stack: LocalStack, tmp_path: Path
) -> None:
    """The estimate of a file with no phone column says so on the page."""
    bad = tmp_path / "no-phone.csv"
    bad.write_text("name;city\nAnn;Paris\n", encoding="utf-8")
    sign_in(page, stack.api_token)
    page.goto("/console/new")
    page.get_by_label("Recipients file").set_input_files(str(bad))
    page.get_by_label("Message").fill("Bonjour")
    page.get_by_role("button", name="Estimate").click()
    expect(page.get_by_role("alert")).to_contain_text("no phone column found")
    shoot(page, "new-campaign-error")


def test_wrong_token_does_not_sign_in(page: Page) -> None:
    """A wrong token stays on the sign-in page with its error, and no page opens."""
    page.goto("/console/sign-in")
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not the API token.")
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def test_forged_form_without_csrf_is_refused(page: Page, stack: LocalStack) -> None:
    """A signed-in browser posting a form without its CSRF token gets 403."""
    sign_in(page, stack.api_token)
    answer = page.request.post("/console/campaigns/1/cancel", form={"reason": "x"})
    assert answer.status == 403
    page.goto("/console/replies")
    shoot(page, "replies")
    page.goto("/console/opt-outs?lang=fr")
    expect(page.get_by_role("heading", name="Désinscriptions")).to_be_visible()
    shoot(page, "opt-outs-fr")
