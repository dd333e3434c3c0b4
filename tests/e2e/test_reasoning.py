"""A reasoning model in a real browser: its thinking streams into an open "Thinking" section,
which folds away when the answer begins; the effort is picked under the composer."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message
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


def test_a_stateless_reasoning_conversation_carries_its_sealed_reasoning_to_the_next_turn(
    page, live_server_url, user, make_sim_deployment, clean_simulator
) -> None:
    """Azure keeps nothing (store=false), yet the model keeps its reasoning: the second turn
    sends back the sealed item the first returned, and the simulator verifies it."""
    stateless = make_sim_deployment(
        name="Sealed", model="o4-mini", store_policy="stateless", is_default=False
    )
    conversation = Conversation.objects.create(owner=user, deployment=stateless)
    sign_in(page, live_server_url, user)
    page.goto(f"/c/{conversation.pk}/")
    for turn, text in enumerate(("Remember the number 42", "Which number?"), start=1):
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_label("Message", exact=True).press("Enter")
        # This turn's reply, not the last one's: it is on the page before it is waited for.
        expect(page.locator(".message-assistant")).to_have_count(turn)
        expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=20_000)
        expect(last_reply(page).locator("details.thinking")).to_have_js_property("open", False)

    first, second = [r["json"] for r in clean_simulator.requests(op="create")]
    assert first["store"] is False
    assert second["store"] is False
    assert second["include"] == ["reasoning.encrypted_content"]
    (sealed,) = Message.objects.get(
        conversation=conversation, reply_to__text="Remember the number 42"
    ).reasoning_items
    assert sealed["encrypted_content"]
    assert second["input"][1] == sealed, "the sealed reasoning goes back verbatim"
    assert "previous_response_id" not in second
