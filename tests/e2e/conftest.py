"""Browser tests: Playwright drives Debian's chromium against a live ASGI server.

The server is the real application (HTTP and websockets) served by uvicorn on 127.0.0.1 in a
thread of the test process, on the test database. Without chromium the tests are skipped with
a reason, except where REQUIRE_BROWSER_TESTS is set (CI), where a skip would hide a failure.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azure_sim.testing import ThreadedServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _allow_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in the test's thread, which makes
    # Django refuse ORM calls from the test body; the calls are synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = "Debian chromium is not installed (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail(f"browser tests are required here but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    # Waits are for states, never sleeps; on a two-core machine shared with other suites a
    # state can take longer than Playwright's 5 s default to arrive.
    expect.set_options(timeout=10_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def live_server_url(transactional_db: None) -> Iterator[str]:
    from config.asgi import application

    with ThreadedServer(application) as server:
        yield server.base_url


@pytest.fixture
def page(browser: Any, live_server_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def screenshot_dir() -> Path:
    """Where screenshots for the docs go: docs/screenshots with UPDATE_SCREENSHOTS set, else
    test-results."""
    root = Path(__file__).resolve().parents[2]
    folder = root / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
