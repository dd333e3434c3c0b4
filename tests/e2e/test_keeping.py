"""Keeping one's work in a real browser: pin, archive, rate a reply, export it."""

import json
import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chat.models import Conversation, Feedback, Preset
from tests.e2e.test_chat import last_reply, sign_in, start_conversation

ROOT = Path(__file__).resolve().parents[2]


def shots_dir() -> Path:
    # The committed screenshots are refreshed on request; ordinary runs keep theirs aside.
    path = ROOT / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sidebar_titles(page: Any) -> list[str]:
    return [
        t.strip()
        for t in page.locator("#conversation-items .conversation-item > a").all_inner_texts()
    ]


def test_pin_archive_rate_and_export_a_conversation(
    browser, page, live_server_url, user, staff_user, sim_deployment
):
    sign_in(page, live_server_url, user)
    Conversation.objects.create(owner=user, title="An older chat")
    Preset.objects.create(
        name="Code reviewer", description="Reviews your diffs", instructions="Review."
    )
    start_conversation(page, "How do I read a CSV file in Python?")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    conversation = Conversation.objects.get(owner=user, title__startswith="How do I")

    # Pin the older chat: it moves to the top.
    older = page.locator(".conversation-item", has_text="An older chat")
    older.hover()
    older.get_by_role("button", name="Pin “An older chat”").click()
    expect(page.locator("#conversation-items .conversation-item").first).to_contain_text(
        "An older chat"
    )
    expect(page.get_by_role("button", name="Unpin “An older chat”")).to_be_attached()

    # Rate the reply, with a comment, shared with the administrators.
    reply = last_reply(page)
    reply.get_by_role("button", name="Bad reply").click()
    expect(reply.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
    reply.get_by_label("Comment (optional)").fill("It forgot the csv module's dialects.")
    reply.get_by_label("Share this conversation with the administrators").check()
    page.screenshot(path=str(shots_dir() / "feedback-desktop-light.png"))
    reply.get_by_role("button", name="Save feedback").click()
    expect(reply.locator(".feedback summary")).to_have_text("Your feedback")
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.share_conversation) == ("down", True)
    assert feedback.comment == "It forgot the csv module's dialects."

    # Export it as Markdown and JSON, and everything at once.
    page.get_by_text("Export", exact=True).click()
    page.screenshot(path=str(shots_dir() / "export-desktop-light.png"))
    with page.expect_download() as markdown:
        page.get_by_role("link", name="Markdown (.md)").click()
    assert markdown.value.suggested_filename.startswith(f"conversation-{conversation.pk}-how-do-i")
    text = Path(markdown.value.path()).read_text()
    assert text.startswith("# How do I read a CSV file in Python?")
    with page.expect_download() as document:
        page.get_by_role("link", name="JSON (.json)").click()
    data = json.loads(Path(document.value.path()).read_text())
    assert [m["role"] for m in data["conversations"][0]["messages"]] == ["user", "assistant"]
    with page.expect_download() as everything:
        page.get_by_role("link", name="Download all").click()
    assert len(json.loads(Path(everything.value.path()).read_text())["conversations"]) == 2

    # Archive the current conversation: it leaves the list, shows under Archived, comes back.
    current = page.locator(".conversation-item.current")
    current.hover()
    page.screenshot(path=str(shots_dir() / "sidebar-actions-desktop-light.png"))
    current.get_by_role("button", name=re.compile("^Archive ")).click()
    expect(page.locator(".conversation-item", has_text="How do I read")).to_have_count(0)
    page.get_by_role("link", name="Archived").click()
    expect(page.locator(".archived-caption")).to_be_visible()
    archived = page.locator(".conversation-item", has_text="How do I read")
    expect(archived.locator(".archived-badge")).to_be_visible()
    archived.hover()
    archived.get_by_role("button", name=re.compile("^Unarchive ")).click()
    expect(page.locator(".conversation-item", has_text="How do I read")).to_have_count(0)
    page.get_by_role("link", name="Back to conversations").click()
    expect(page.locator(".conversation-item", has_text="How do I read")).to_have_count(1)
    conversation.refresh_from_db()
    assert not conversation.archived

    page.goto("/")
    expect(page.get_by_text("Code reviewer")).to_be_visible()
    page.screenshot(path=str(shots_dir() / "presets-desktop-light.png"))

    # The administrator sees the rating and, since it was shared, the conversation.
    admin = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server_url)
    admin_page = admin.new_page()
    sign_in(admin_page, live_server_url, staff_user)
    admin_page.goto("/admin/chat/feedback/")
    expect(admin_page.get_by_text("It forgot the csv module's dialects.")).to_be_visible()
    admin_page.screenshot(
        path=str(shots_dir() / "feedback-admin-desktop-light.png"), full_page=True
    )
    admin_page.get_by_role("link", name="Read the shared conversation").click()
    expect(admin_page.get_by_text("the rated reply")).to_be_visible()
    admin.close()


def test_the_sidebar_actions_work_on_a_phone(browser, live_server_url, user, sim_deployment):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server_url)
    page = context.new_page()
    sign_in(page, live_server_url, user)
    Conversation.objects.create(owner=user, title="First chat")
    Conversation.objects.create(owner=user, title="Second chat")
    page.goto("/")
    page.get_by_role("button", name="Show conversations").click()
    page.get_by_role("button", name="Pin “First chat”").click()
    expect(page.locator("#conversation-items .conversation-item").first).to_contain_text(
        "First chat"
    )
    page.screenshot(path=str(shots_dir() / "sidebar-actions-phone-light.png"))
    page.get_by_role("button", name="Archive “Second chat”").click()
    expect(page.locator(".conversation-item", has_text="Second chat")).to_have_count(0)
    assert Conversation.objects.get(title="Second chat").archived
    context.close()
