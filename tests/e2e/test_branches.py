"""Branches and models in a real browser: a person edits a message, regenerates a reply, moves
between the versions with the arrows and switches model mid-conversation."""

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chat.models import Conversation
from chat.selectors import conversation_branch_messages
from tests.e2e.test_chat import last_reply, sign_in, start_conversation


@pytest.fixture
def chat_page(page, live_server_url, user, sim_deployment):
    sign_in(page, live_server_url, user)
    return page


def send(page: Any, text: str) -> None:
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")


def completed(page: Any) -> None:
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)


def last_question(page: Any) -> Any:
    return page.locator("article.message-user").last


def edit_last_question(page: Any, text: str) -> None:
    question = last_question(page)
    editor = question.get_by_label("Edit your message")
    expect(editor).to_be_hidden()
    question.get_by_role("button", name="Edit message").click()
    expect(editor).to_be_focused()
    editor.fill(text)
    editor.press("Enter")


def test_edit_regenerate_move_between_branches_and_switch_model(
    chat_page, make_sim_deployment
) -> None:
    page = chat_page
    make_sim_deployment(name="Second model", is_default=False)
    start_conversation(page, "[[sim echo]]first question")
    completed(page)
    send(page, "[[sim echo]]second question")
    expect(page.locator("article.message-assistant")).to_have_count(2)
    completed(page)

    edit_last_question(page, "[[sim echo]]second, edited")
    expect(last_reply(page)).to_contain_text("second, edited")
    completed(page)
    expect(last_question(page).locator(".branch-position")).to_have_text("2 / 2")
    expect(page.locator("article.message-assistant")).to_have_count(2)

    last_reply(page).get_by_role("button", name="Regenerate this reply").click()
    expect(last_reply(page).locator(".branch-position")).to_have_text("2 / 2")
    completed(page)

    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page).locator(".branch-position")).to_have_text("1 / 2")
    last_question(page).get_by_role("button", name="Previous version").click()
    expect(last_question(page)).to_contain_text("second question")
    expect(last_question(page).locator(".branch-position")).to_have_text("1 / 2")
    expect(last_reply(page)).to_contain_text("second question")

    page.get_by_label("Model for the next reply").select_option(label="Second model")
    expect(page.locator("#chat-subtitle")).to_contain_text("Second model")
    send(page, "[[sim echo]]third")
    expect(page.locator("article.message-assistant")).to_have_count(3)
    completed(page)
    expect(last_reply(page).locator(".message-author")).to_have_text("Second model")
    expect(page.locator("article.message-assistant").first.locator(".message-author")).to_have_text(
        "Simulator"
    )

    page.reload()
    expect(last_reply(page)).to_contain_text("third")
    conversation = Conversation.objects.get()
    assert [m.text for m in conversation_branch_messages(conversation)] == [
        "[[sim echo]]first question",
        "first question",
        "[[sim echo]]second question",
        "second question",
        "[[sim echo]]third",
        "third",
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "viewport"), [("desktop", (1280, 860)), ("phone", (390, 844))])
def test_branch_screenshots(
    browser, live_server_url, user, sim_deployment, make_sim_deployment, scheme, device, viewport
) -> None:
    make_sim_deployment(name="GPT-4.1 Sweden", is_default=False)
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        color_scheme=scheme,
        base_url=live_server_url,
    )
    page = context.new_page()
    sign_in(page, live_server_url, user)
    start_conversation(page, "[[sim echo]]Name three **rivers** in Europe.")
    completed(page)
    last_reply(page).get_by_role("button", name="Regenerate this reply").click()
    expect(last_reply(page).locator(".branch-position")).to_have_text("2 / 2")
    completed(page)
    last_question(page).get_by_role("button", name="Edit message").click()
    expect(last_question(page).get_by_label("Edit your message")).to_be_focused()
    root = Path(__file__).resolve().parents[2]
    docs = root / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    docs.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(docs / f"branches-{device}-{scheme}.png"))
    context.close()
