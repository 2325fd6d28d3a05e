"""The dashboard in a real headless Chromium: create, watch live, cancel.

Screenshots of the pages are saved in ``test-artifacts/`` for a human look.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.receiver import Receiver
from support.stack import Stack

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path(os.environ.get("LOOPITIS_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Chromium's own background traffic is refused on a closed network; these
# flags keep it quiet and local.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium "
        "(apt-get install chromium) to run the browser tests",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is in the test extra"
)


@pytest.fixture
async def page(stack: Stack) -> AsyncIterator[Page]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        username, password = stack.auth
        context = await browser.new_context(
            base_url=stack.base_url,
            http_credentials={"username": username, "password": password},
            viewport={"width": 1360, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()


async def test_dashboard_creates_watches_and_cancels_a_job(
    page: Page, receiver: Receiver
) -> None:
    """A job made from the form shows its executions live and can be canceled."""
    expect = playwright_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto("/ui/new")
    await page.fill("input[name=name]", "browser watched job")
    await page.fill("input[name=return_url]", receiver.url("/browser"))
    await page.fill("input[name=interval]", "half a second")
    await page.click("button[type=submit]")
    await expect(page.locator('.field-error[data-for="interval"]')).to_contain_text(
        "interval"
    )

    await page.screenshot(path=ARTIFACTS / "dashboard-new-job.png", full_page=True)

    await page.fill("input[name=interval]", "400ms")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/ui/jobs/*")
    await page.evaluate("window.loadedOnce = true")
    rows = page.locator("#executions tr.execution")
    await expect(rows.nth(2)).to_be_visible()
    await expect(rows.first.locator(".outcome")).to_have_text("succeeded")
    assert await page.evaluate("window.loadedOnce") is True, "the page reloaded"
    await page.screenshot(path=ARTIFACTS / "dashboard-job.png", full_page=True)

    await page.click("#cancel")
    await expect(page.locator("#job-status")).to_have_text("CANCELED")
    await expect(page.locator("#cancel")).to_be_hidden()

    await page.goto("/ui?q=browser+watched")
    await expect(page.locator("#jobs a.job-link").first).to_have_text(
        "browser watched job"
    )
    await expect(page.locator("#jobs .status").first).to_have_text("CANCELED")
    await page.goto("/ui")
    await page.screenshot(path=ARTIFACTS / "dashboard-jobs.png", full_page=True)


async def test_dashboard_system_and_report_pages_render(
    page: Page,
) -> None:
    """The system page lists the consumer; the report page offers its CSV."""
    expect = playwright_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto("/ui/system")
    await expect(page.locator("#consumers tbody tr")).to_have_count(1)
    await page.screenshot(path=ARTIFACTS / "dashboard-system.png", full_page=True)

    await page.goto("/ui/reports")
    await expect(page.locator("#by-outcome")).to_contain_text("succeeded")
    async with page.expect_download() as download_info:
        await page.click("text=Download CSV")
    download = await download_info.value
    assert download.suggested_filename.endswith(".csv")
    await page.screenshot(path=ARTIFACTS / "dashboard-reports.png", full_page=True)
