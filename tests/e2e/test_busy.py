"""A busy server, in a real browser: a reply that must wait says so, then streams as usual."""

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot_dir
from tests.e2e.test_chat import last_reply, sign_in, start_conversation

BUSY = "The server is busy: your reply starts in a moment."


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", {"width": 1280, "height": 800}), ("dark", {"width": 390, "height": 844})],
)
def test_a_reply_that_waits_says_so_then_streams(
    browser: Any,
    live_server_url: str,
    user: Any,
    make_sim_deployment: Any,
    settings: Any,
    scheme: str,
    viewport: dict[str, int],
) -> None:
    settings.CHAT_MAX_STREAMS = 1
    make_sim_deployment(name="Slow", options="tps=40,words=150", is_default=True)
    context = browser.new_context(viewport=viewport, color_scheme=scheme, base_url=live_server_url)
    first, second = context.new_page(), context.new_page()
    for page in (first, second):
        page.set_default_timeout(15_000)
    sign_in(first, live_server_url, user)
    start_conversation(first, "A long answer, please")
    expect(first.locator(".message-stream")).not_to_be_empty()

    start_conversation(second, "And one for me")
    waiting = last_reply(second)
    expect(waiting.get_by_role("status")).to_have_text(BUSY)
    second.screenshot(path=str(screenshot_dir() / f"busy-{scheme}-{viewport['width']}.png"))

    expect(last_reply(first)).to_have_attribute("data-status", "completed", timeout=20_000)
    expect(waiting.locator(".message-queued")).to_be_hidden()
    expect(waiting).to_have_attribute("data-status", "completed", timeout=20_000)
    context.close()
