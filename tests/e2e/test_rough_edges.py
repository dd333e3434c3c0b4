"""Rough edges a person meets in the browser, each kept from coming back."""

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError, expect

from chat.models import Conversation, Deployment
from tests.e2e.axe import blocking_violations
from tests.e2e.test_chat import chat_page, last_reply, sign_in, start_conversation

__all__ = ["chat_page"]  # the fixture, shared with the chat tests

ROOT = Path(__file__).resolve().parents[2]
FAILING = "[[sim fault=server_error times=3]] "


def _shots() -> Path:
    # The committed screenshots are refreshed on request; ordinary runs keep theirs aside.
    folder = ROOT / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def phone(browser, live_server_url, user, sim_deployment) -> Any:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", base_url=live_server_url
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server_url, user)
    yield page
    context.close()


def test_a_phone_shows_rename_and_delete_in_the_sidebar(phone, user) -> None:
    for title in ("Trip to Lisbon", "Quarterly numbers"):
        Conversation.objects.create(owner=user, title=title)
    start_conversation(phone, "Hello from a phone")
    expect(last_reply(phone)).to_have_attribute("data-status", "completed")
    phone.get_by_role("button", name="Show conversations").click()
    expect(phone.locator(".sidebar")).to_be_in_viewport()
    item = phone.locator(".conversation-item", has_text="Trip to Lisbon")
    actions = item.locator(".item-actions")
    assert actions.evaluate("e => getComputedStyle(e).opacity") == "1"
    assert actions.evaluate("e => getComputedStyle(e).pointerEvents") != "none"
    phone.screenshot(path=str(_shots() / "sidebar-phone-dark.png"))
    item.get_by_role("button", name="Rename").click()
    expect(phone.get_by_label("New title")).to_be_visible()


def test_message_copy_buttons_are_legible_in_both_themes(
    browser, live_server_url, user, sim_deployment
) -> None:
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, base_url=live_server_url)
        page = context.new_page()
        sign_in(page, live_server_url, user)
        start_conversation(page, f"Hello in {scheme}")
        expect(last_reply(page)).to_have_attribute("data-status", "completed")
        assert blocking_violations(page, context=".message-actions") == [], scheme
        context.close()


def test_a_code_block_takes_keyboard_focus_with_a_visible_ring(chat_page) -> None:
    page = chat_page
    start_conversation(page, "[[sim echo]]Code:\n\n```python\nprint('" + "x" * 300 + "')\n```\n")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    page.reload()
    pre = page.locator(".code-block pre")
    # Chromium lets a keyboard into any scroller by itself; other browsers need the tabindex.
    expect(pre).to_have_attribute("tabindex", "0")
    # Keyboard focus is drawn only in the window that has the system's focus: in a suite,
    # another page of the same browser may have it.
    page.bring_to_front()
    page.locator(".code-block .copy-button").focus()
    page.keyboard.press("Tab")
    expect(pre).to_be_focused()
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.code-block pre')).outlineStyle === 'solid'"
    )
    # The keyboard scrolls it: a loaded machine may drop a key press, so a few are given,
    # each waiting for the scroll it should cause.
    scrolled = "() => document.querySelector('.code-block pre').scrollLeft > 0"
    for _ in range(5):
        page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function(scrolled, timeout=2_000)
            break
        except PlaywrightTimeoutError:
            expect(pre).to_be_focused()
    else:
        raise AssertionError("the keyboard never scrolled the code block")


def test_only_the_latest_failed_reply_offers_retry(chat_page) -> None:
    page = chat_page
    start_conversation(page, FAILING + "First")
    expect(last_reply(page)).to_have_attribute("data-status", "failed")
    page.get_by_label("Message", exact=True).fill(FAILING + "Second")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator("article.message-assistant")).to_have_count(2)
    expect(last_reply(page)).to_have_attribute("data-status", "failed")
    expect(page.get_by_role("button", name="Retry")).to_have_count(1)
    expect(last_reply(page).get_by_role("button", name="Retry")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Retry")).to_have_count(1)


def test_a_rename_shows_in_the_heading_and_tab_title_at_once(chat_page) -> None:
    page = chat_page
    start_conversation(page, "Name me later")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    item = page.locator(".conversation-item.current")
    item.hover()
    item.get_by_role("button", name="Rename").click()
    page.get_by_label("New title").fill("Holiday plans")
    page.get_by_label("New title").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Holiday plans")
    expect(page).to_have_title("Holiday plans · Chat")
    expect(page.locator(".conversation-item.current")).to_contain_text("Holiday plans")


def test_a_refused_new_chat_leaves_the_address_at_the_new_chat_page(chat_page, settings) -> None:
    page = chat_page
    settings.CHAT_RATE_LIMIT = 0
    page.goto("/")
    page.get_by_label("Message", exact=True).fill("Refused, then reloaded")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("faster than allowed")
    assert page.url == page.url.split("/c/")[0].rstrip("/") + "/", "back at the new-chat page"
    expect(page.get_by_label("Message", exact=True)).to_have_value("Refused, then reloaded")
    page.reload()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert not Conversation.objects.exists()


def test_enter_while_a_reply_streams_says_why_and_keeps_the_draft(
    chat_page, make_sim_deployment
) -> None:
    page = chat_page
    make_sim_deployment(name="Slow", options="tps=30,words=300", is_default=False)
    page.goto("/")
    page.get_by_label("Model").select_option(label="Slow")
    page.get_by_label("Message", exact=True).fill("A long answer please")
    page.get_by_label("Message", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"/c/\d+/$"))  # loaded: its script takes the keys
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    box = page.get_by_label("Message", exact=True)
    box.fill("My next question")
    box.press("Enter")
    hint = page.locator("#composer-busy")
    expect(hint).to_have_text(re.compile("A reply is still being written: press Stop or wait"))
    expect(box).to_have_value("My next question")
    page.get_by_role("button", name="Stop").click()
    expect(last_reply(page)).to_have_attribute("data-status", "cancelled")
    expect(hint).to_be_empty()
    expect(box).to_have_value("My next question")


def test_a_sidebar_action_after_the_session_ended_goes_to_the_sign_in_page(chat_page) -> None:
    page = chat_page
    start_conversation(page, "Soon signed out")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    Session.objects.all().delete()
    item = page.locator(".conversation-item.current")
    item.hover()
    item.get_by_role("button", name="Rename").click()
    page.wait_for_url(re.compile(r"/account/sign-in/\?next=/c/\d+/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator(".sidebar")).to_have_count(0)


def test_the_picker_says_what_azure_keeps_for_the_chosen_model(
    chat_page, make_sim_deployment
) -> None:
    page = chat_page
    make_sim_deployment(
        name="Private", store_policy=Deployment.StorePolicy.STATELESS, is_default=False
    )
    page.goto("/")
    note = page.locator("#store-note")
    expect(note).to_have_text("Azure keeps a copy for 30 days")
    page.get_by_label("Model").select_option(label="Private")
    expect(note).to_have_text("Nothing kept on Azure")
    expect(page.get_by_label("Model")).to_have_accessible_description("Nothing kept on Azure")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_instructions_are_shown_and_changed_on_the_page(
    browser, live_server_url, user, sim_deployment, clean_simulator, scheme
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, color_scheme=scheme, base_url=live_server_url
    )
    page = context.new_page()
    sign_in(page, live_server_url, user)
    start_conversation(page, "Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    panel = page.locator("#instructions")
    expect(panel.locator("summary")).to_contain_text("(none)")
    panel.locator("summary").click()
    page.get_by_label(re.compile("Instructions \\(system prompt\\)")).fill("Answer like a pirate.")
    page.get_by_role("button", name="Save instructions").click()
    expect(page.locator("#instructions summary")).to_contain_text("Answer like a pirate.")
    expect(page.locator("#instructions [role=status]")).to_contain_text("Saved")
    page.screenshot(path=str(_shots() / f"instructions-desktop-{scheme}.png"))
    page.get_by_label("Message", exact=True).fill("Ahoy?")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator("article.message-assistant")).to_have_count(2)
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    bodies = [r["json"] for r in clean_simulator.requests(op="create")]
    assert bodies[-1]["instructions"] == "Answer like a pirate."
    context.close()
