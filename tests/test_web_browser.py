"""The console's real page in headless Chromium (Debian's, driven by Playwright; no browser is downloaded)
against a real uvicorn server on 127.0.0.1, signed in the way Telegram opens a Mini App (``#tgWebAppData=``).

Screenshots of every page at phone (390×844) and desktop (1280×800) size go to the test's tmp_path.
Skipped only when no Chromium is found and CI is not set; under CI=true they must run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import console_office as office_data
from bot.sandbox.console_office import BOSS, ConsoleOffice
from bot.sandbox.harness import TOKEN, BotHarness
from bot.sandbox.webapp import console_link, sign_init_data
from bot.web.server import ConsoleServer


def _chromium() -> str | None:
    for candidate in (os.environ.get("FIELDBOT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
if os.environ.get("CI", "").lower() != "true":
    if CHROMIUM is None:
        pytest.skip("no Chromium found (apt-get install chromium); these run whenever CI=true",
                    allow_module_level=True)
    pytest.importorskip("playwright.async_api", reason="Playwright is a test dependency: pip install -e '.[test]'")

import playwright.async_api as playwright_api  # noqa: E402  (after the skip: under CI a missing one fails)

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
async def office(harness: BotHarness) -> ConsoleOffice:
    return await office_data.seed(harness)


@pytest.fixture
async def console_url(harness: BotHarness, office: ConsoleOffice) -> AsyncIterator[str]:
    server = ConsoleServer(harness.runtime, TOKEN, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    assert CHROMIUM is not None, "CI=true: Chromium must be installed (.ci/run installs Debian's chromium)"
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            await launched.close()


async def _open(browser: Any, base: str, init_data: str, size: str) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport=SIZES[size], accept_downloads=True, locale="en-US")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error"
            and "telegram.org" not in message.text and "ERR_FAILED" not in message.text else None)
    await page.route("https://telegram.org/**", lambda route: route.abort())  # no internet: the page works without it
    await page.goto(console_link(base, init_data))
    return context, page, problems


async def _shot(page: Any, tmp_path: Path, name: str, size: str) -> None:
    await page.screenshot(path=str(tmp_path / f"{name}-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_a_supervisor_works_through_the_console(harness: BotHarness, office: ConsoleOffice, console_url: str,
                                                      browser: Any, tmp_path: Path, size: str) -> None:
    init_data = sign_init_data(TOKEN, BOSS, auth_date=harness.clock.now(), language_code="en", first_name="Wang")
    context, page, problems = await _open(browser, console_url, init_data, size)
    expect = playwright_api.expect
    try:
        # signed in: the map is the first page, with the open alarm's marker and its trail
        await expect(page.locator("#who")).to_contain_text("王主管")
        assert "tgWebAppData" not in page.url  # the sign-in is not left in the address bar
        await expect(page.locator('[data-kind="incident"]')).to_have_count(1)
        await expect(page.locator("polyline.trail")).to_have_count(1)
        await expect(page.locator('[data-kind="case"]')).to_have_count(2)
        await expect(page.locator('[data-kind="collector"]')).to_have_count(2)
        await _shot(page, tmp_path, "map", size)

        # search a case, open it: the photo and the audio player
        await page.click('#tabs button[data-view="cases"]')
        await page.fill('input[name="text"]', "ZS-1001")
        await page.click('form.filters button[type="submit"]')
        await expect(page.locator('[data-testid="results"] tbody tr')).to_have_count(1)
        await _shot(page, tmp_path, "cases", size)
        await page.click('[data-testid="results"] tbody tr')
        await expect(page.locator('[data-testid="case-page"] h2')).to_have_text("ZS-1001")
        photo = page.locator('img[data-testid="photo"]')
        await expect(photo).to_have_attribute("src", _blob())
        assert await photo.evaluate("img => img.complete && img.naturalWidth > 0")
        audio = page.locator('audio[data-testid="audio"]')
        await expect(audio).to_have_count(1)
        await expect(audio).to_have_attribute("src", _blob())
        await expect(page.locator('[data-testid="case-timeline"] li').first).to_be_visible()
        await _shot(page, tmp_path, "case", size)
        await page.click("button.thumb-button")  # the full-size photo
        await expect(page.locator("#viewer")).to_be_visible()
        assert await page.locator("#viewer-img").evaluate("img => img.naturalWidth") == 640
        await page.click("#viewer")

        # the evidence bundle: its manifest's hashes match the files
        async with page.expect_download() as caught:
            await page.click('[data-testid="bundle"]')
        download = await caught.value
        bundle = Path(await download.path()).read_bytes()
        _check_bundle(bundle)

        # approve a waiting report: it leaves the queue
        await page.click('#tabs button[data-view="reviews"]')
        reviews = page.locator('[data-testid="review"]')
        await expect(reviews).to_have_count(2)
        await _shot(page, tmp_path, "reviews", size)
        first = reviews.first
        await expect(first).to_contain_text("ZS-1001")
        await first.locator('[data-testid="approve"]').click()
        await expect(reviews).to_have_count(1)
        await expect(page.locator(f'[data-visit="{office.visits["ZS-1001"]}"]')).to_have_count(0)
        await page.click('#tabs button[data-view="reviews"]')  # and stays gone after a reload of the list
        await expect(reviews).to_have_count(1)

        # alarms with the month's figures, then one alarm's timeline
        await page.click('#tabs button[data-view="incidents"]')
        await expect(page.locator('[data-testid="figures"]')).to_contain_text("80% within 10 s")
        await _shot(page, tmp_path, "incidents", size)
        await page.locator('[data-testid="incidents-open"] tbody tr').first.click()
        await expect(page.locator('[data-testid="incident-timeline"] li')).not_to_have_count(0)

        # reports: the charts and the XLSX download
        await page.click('#tabs button[data-view="reports"]')
        await expect(page.locator("svg.chart")).to_have_count(2)
        await _shot(page, tmp_path, "reports", size)
        async with page.expect_download() as caught:
            await page.click('[data-testid="xlsx"]')
        assert Path(await (await caught.value).path()).read_bytes()[:2] == b"PK"

        # back on the map, the alarm marker opens the alarm
        await page.click('#tabs button[data-view="map"]')
        await page.locator('[data-kind="incident"]').click()
        await expect(page.locator('[data-testid="incident-page"]')).to_be_visible()
        assert problems == []
    finally:
        await context.close()
    assert (tmp_path / f"map-{size}.png").stat().st_size > 5000


def _blob() -> Any:
    import re

    return re.compile(r"^blob:")


def _check_bundle(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        names = bundle.namelist()
        manifest_name = next(n for n in names if n.endswith("manifest.json"))
        manifest = json.loads(bundle.read(manifest_name))
        root = manifest_name.rsplit("/", 1)[0]
        assert manifest["files"], manifest
        for entry in manifest["files"]:
            content = bundle.read(f"{root}/{entry['path']}" if not entry["path"].startswith(root) else entry["path"])
            assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["path"]
        assert {e["kind"] for e in manifest["evidence"] if e["status"] == "included"} >= {"photo", "audio"}
        assert all(e["matches_receipt"] for e in manifest["evidence"] if e["status"] == "included")


async def test_a_forged_sign_in_shows_the_refusal(harness: BotHarness, office: ConsoleOffice, console_url: str,
                                                  browser: Any) -> None:
    init_data = sign_init_data("7000000002:ANOTHER-BOT", BOSS, auth_date=harness.clock.now())
    context, page, _ = await _open(browser, console_url, init_data, "phone")
    try:
        await playwright_api.expect(page.locator('[data-testid="fatal"]')).to_be_visible()
        assert await page.locator("#tabs").is_hidden()
    finally:
        await context.close()


async def test_the_page_speaks_the_viewer_s_language(harness: BotHarness, office: ConsoleOffice, console_url: str,
                                                     browser: Any, tmp_path: Path) -> None:
    init_data = sign_init_data(TOKEN, BOSS, auth_date=harness.clock.now(), language_code="zh-hans")
    context, page, problems = await _open(browser, console_url, init_data, "phone")
    try:
        await playwright_api.expect(page.locator('#tabs button[data-view="cases"]')).to_have_text("案件")
        await playwright_api.expect(page.locator("#title")).to_have_text("主管控制台")
        await page.click('#tabs button[data-view="reviews"]')
        await playwright_api.expect(page.locator('[data-testid="approve"]').first).to_have_text("通过")
        await _shot(page, tmp_path, "reviews-zh", "phone")
        assert problems == []
    finally:
        await context.close()
