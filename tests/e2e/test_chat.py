"""A person chatting in a real browser: Debian chromium, the live ASGI app, the simulator."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from chat.models import Conversation, Deployment, Message
from tests.e2e.conftest import screenshot

SLOW = "tps=60,words=250,ttft_ms=50"


def sign_in(page: Any, live_server_url: str, user: Any) -> None:
    """Put a signed-in session cookie in the browser (the sign-in page has its own test)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server_url,
            }
        ]
    )


@pytest.fixture
def chat_page(page, live_server_url, user, sim_deployment):
    sign_in(page, live_server_url, user)
    return page


def start_conversation(page: Any, text: str) -> None:
    page.goto("/")
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"/c/\d+/$"))


def last_reply(page: Any) -> Any:
    return page.locator("article.message-assistant").last


def test_send_and_watch_the_reply_stream_in(chat_page, make_sim_deployment) -> None:
    page = chat_page
    Conversation.objects.all().delete()
    make_sim_deployment(name="Slow", options=SLOW, is_default=False)
    page.goto("/")
    page.get_by_label("Model").select_option(label="Slow")
    page.get_by_label("Message", exact=True).fill("Explain streaming, please")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/c/\d+/$"))

    stream = page.locator(".message-stream")
    expect(stream).not_to_be_empty()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    first_length = len(stream.inner_text())
    page.wait_for_timeout(400)
    assert len(stream.inner_text()) > first_length, "text keeps arriving"

    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(last_reply(page).locator(".markdown h2, .markdown h3").first).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".conversation-item.current")).to_contain_text("Explain streaming")
    screenshot(page, "conversation")


def test_enter_sends_and_shift_enter_makes_a_new_line(chat_page) -> None:
    page = chat_page
    start_conversation(page, "First message")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")

    box = page.get_by_label("Message", exact=True)
    box.focus()
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    box.press("Enter")
    expect(page.locator("article.message-user").last).to_contain_text("line one\nline two")
    expect(box).to_have_value("")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    assert Message.objects.filter(text="line one\nline two").exists()


def test_stop_keeps_the_partial_reply(chat_page, make_sim_deployment) -> None:
    page = chat_page
    make_sim_deployment(name="Slow", options="tps=30,words=400", is_default=False)
    Conversation.objects.all().delete()
    page.goto("/")
    page.get_by_label("Model").select_option(label="Slow")
    page.get_by_label("Message", exact=True).fill("A long answer please")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator(".message-stream")).not_to_be_empty()
    page.get_by_role("button", name="Stop").click()
    expect(last_reply(page)).to_have_attribute("data-status", "cancelled")
    expect(last_reply(page)).to_contain_text("You stopped this reply.")
    reply = Message.objects.get(role="assistant")
    assert reply.status == Message.Status.CANCELLED
    assert reply.text


def test_reload_while_streaming_continues_live(chat_page, make_sim_deployment) -> None:
    page = chat_page
    make_sim_deployment(name="Slow", options="tps=50,words=200", is_default=False)
    page.goto("/")
    page.get_by_label("Model").select_option(label="Slow")
    page.get_by_label("Message", exact=True).fill("Keep going after a reload")
    page.get_by_label("Message", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(page.locator(".message-stream")).not_to_be_empty()

    page.reload()
    expect(page.locator(".message-stream")).not_to_be_empty()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)


def test_a_second_tab_sees_the_stream(chat_page, make_sim_deployment) -> None:
    page = chat_page
    make_sim_deployment(name="Slow", options="tps=50,words=150", is_default=False)
    start_conversation(page, "Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.get_by_role("button", name="Send")).to_be_visible()
    other.wait_for_timeout(300)

    Conversation.objects.update(deployment=Deployment.objects.get(name="Slow"))
    page.get_by_label("Message", exact=True).fill("Seen from both tabs")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(other.locator("article.message-user").last).to_contain_text("Seen from both tabs")
    expect(other.locator(".message-stream")).not_to_be_empty()
    expect(other.locator("article.message-assistant").last).to_have_attribute(
        "data-status", "completed", timeout=15_000
    )
    other.close()


def test_a_failure_is_explained_and_retry_works(chat_page) -> None:
    page = chat_page
    start_conversation(page, "[[sim fault=server_error times=3]] Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "failed")
    expect(last_reply(page).get_by_role("alert")).to_be_visible()
    page.get_by_role("button", name="Retry").click()
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    assert Message.objects.filter(role="user").count() == 1, "the question was asked once"


def test_keyboard_only(chat_page) -> None:
    page = chat_page
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Message", exact=True).focus()
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


HOSTILE = (
    "[[sim echo]]# Hostile\n\n"
    "<script>alert('script')</script>\n\n"
    "<img src=x onerror=\"alert('img')\">\n\n"
    "[click me](javascript:alert('link'))\n\n"
    '<a href="/admin/" hx-get="/admin/" hx-trigger="load">htmx</a>\n\n'
    '<div hx-get="/c/" hx-trigger="load" hx-target="body">div</div>\n\n'
    "![tracker](http://127.0.0.1:9/tracker.png)\n"
)


def test_hostile_model_output_renders_inert(chat_page, live_server_url) -> None:
    page = chat_page
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    start_conversation(page, HOSTILE)
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    page.on("request", lambda request: requests.append(request.url))
    page.reload()
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    page.wait_for_timeout(500)

    body = last_reply(page).locator(".markdown")
    assert dialogs == []
    assert body.locator("script, img, [onerror], [hx-get], [hx-trigger]").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert "<script>" in body.inner_text(), "raw HTML shows as text"
    assert not [url for url in requests if "tracker" in url or "/admin/" in url]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "viewport"), [("desktop", (1280, 860)), ("phone", (390, 844))])
def test_screenshots(
    browser, live_server_url, user, sim_deployment, scheme, device, viewport
) -> None:
    from pathlib import Path

    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        color_scheme=scheme,
        base_url=live_server_url,
    )
    page = context.new_page()
    sign_in(page, live_server_url, user)
    start_conversation(page, "How do I read a CSV file in Python?")
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    # The committed screenshots are refreshed on request; ordinary runs keep theirs aside.
    root = Path(__file__).resolve().parents[2]
    docs = root / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    docs.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(docs / f"conversation-{device}-{scheme}.png"))
    page.goto("/")
    page.screenshot(path=str(docs / f"new-chat-{device}-{scheme}.png"))
    context.close()


def _database_url() -> str:
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database.get("USER") or "postgres"
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{database['NAME']}"


@pytest.fixture
def second_process(live_server_url, simulator_key) -> Iterator[str]:
    """Another app process on the same database and Redis, as behind a load balancer."""
    if not settings.REDIS_URL:
        pytest.skip("tabs on different processes meet through Redis: set REDIS_URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DATABASE_POOL": "false",
        "SIMULATOR_API_KEY": simulator_key,
        "ALLOW_LOOPBACK_ENDPOINTS": "true",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310 (http on loopback)
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the second app process did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_stop_from_a_tab_served_by_another_process(
    chat_page, make_sim_deployment, second_process
) -> None:
    page = chat_page
    make_sim_deployment(name="Slow", options="tps=30,words=400", is_default=False)
    page.goto("/")
    page.get_by_label("Model").select_option(label="Slow")
    page.get_by_label("Message", exact=True).fill("Stream across processes")
    page.get_by_label("Message", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(page.locator(".message-stream")).not_to_be_empty()

    other = page.context.new_page()
    other.goto(second_process + urllib.parse.urlsplit(page.url).path)
    expect(other.get_by_role("button", name="Stop")).to_be_visible()
    expect(other.locator(".message-stream")).not_to_be_empty()
    other.get_by_role("button", name="Stop").click()

    expect(last_reply(page)).to_have_attribute("data-status", "cancelled")
    expect(other.locator("article.message-assistant").last).to_have_attribute(
        "data-status", "cancelled"
    )
    other.close()
