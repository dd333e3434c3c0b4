"""A reasoning model in a real browser: its thinking streams into an open "Thinking" section,
which folds away when the answer begins; the effort is picked under the composer."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chat.models import Conversation
from tests.e2e.test_chat import last_reply, sign_in

# Slow enough to watch: the summary streams for about a second before the answer.
THINKING_SLOW = "tps=30,words=80,ttft_ms=50"


def _screenshots_dir() -> Path:
    # The committed screenshots are refreshed on request; ordinary runs keep theirs aside.
    root = Path(__file__).resolve().parents[2]
    docs = root / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    docs.mkdir(parents=True, exist_ok=True)
    return docs


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_thinking_streams_and_folds_away(
    browser, live_server_url, user, sim_deployment, make_sim_deployment, clean_simulator, scheme
) -> None:
    thinker = make_sim_deployment(
        name="Thinker", model="o4-mini", options=THINKING_SLOW, is_default=False
    )
    conversation = Conversation.objects.create(owner=user, deployment=thinker)
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, color_scheme=scheme, base_url=live_server_url
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server_url, user)
    page.goto(f"/c/{conversation.pk}/")
    page.get_by_label("Reasoning effort for the next reply").select_option("low")
    expect(page.locator("#composer-effort option[value=low]")).to_have_attribute("selected", "")
    page.get_by_label("Message", exact=True).fill("Why is the sky blue?")
    page.get_by_label("Message", exact=True).press("Enter")

    reply = last_reply(page)
    thinking = reply.locator("details.thinking")
    expect(thinking).to_have_js_property("open", True)
    expect(thinking.locator("summary")).to_have_text("Thinking…")
    # Its title rendered: the summary streams as markdown, as the answer does.
    expect(thinking.locator(".thinking-body strong")).to_contain_text("Weighing the")
    page.screenshot(path=str(_screenshots_dir() / f"thinking-open-{scheme}.png"))

    body = reply.locator(".message-stream")
    expect(body).not_to_have_text("")
    expect(thinking).to_have_js_property("open", False)
    expect(reply).to_have_attribute("data-status", "completed", timeout=20_000)
    thinking = reply.locator("details.thinking")
    expect(thinking).to_have_js_property("open", False)
    expect(thinking.locator("summary")).to_have_text("Thinking")
    expect(reply.locator(".reasoning-usage")).to_contain_text("reasoning")
    page.screenshot(path=str(_screenshots_dir() / f"thinking-folded-{scheme}.png"))

    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-body")).to_be_visible()
    expect(thinking.locator(".thinking-body")).to_contain_text("Weighing the")
    (body,) = [r["json"] for r in clean_simulator.requests(op="create")]
    assert body["reasoning"] == {"summary": "auto", "effort": "low"}
    context.close()
