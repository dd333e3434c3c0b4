"""Sockets in a real browser: refused from another port of the same host, closed when an admin
deactivates the person holding them."""

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from azure_sim.testing import ThreadedServer
from chat.models import Conversation, Message
from tests.e2e.test_chat import sign_in
from tests.factories import PASSWORD, UserFactory

# A page on another port of the same host: it opens the chat's socket with whatever cookies the
# browser sends, tries to send a message as the person, and reports what happened.
FOREIGN_PAGE = b"""<!doctype html><title>elsewhere</title><body><script>
const socket = new WebSocket(new URLSearchParams(location.search).get("target"));
socket.onopen = () => {
  document.body.dataset.opened = "yes";
  socket.send(JSON.stringify({text: "sent by another site", client_id: crypto.randomUUID()}));
};
socket.onmessage = (event) => { document.body.dataset.read = event.data.length; };
socket.onclose = (event) => { document.body.dataset.result = "closed:" + event.code; };
</script></body>"""

OPEN_SOCKET = """async (target) => await new Promise((resolve) => {
  const socket = new WebSocket(target);
  socket.onopen = () => { socket.close(); resolve("open"); };
  socket.onclose = (event) => resolve("closed:" + event.code);
})"""


async def foreign_site(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": FOREIGN_PAGE})


@pytest.fixture
def elsewhere() -> Iterator[str]:
    with ThreadedServer(foreign_site, lifespan="off") as server:
        yield server.base_url


def test_a_page_on_another_port_cannot_open_the_socket(
    page, live_server_url, user, sim_deployment, elsewhere
) -> None:
    sign_in(page, live_server_url, user)
    conversation = Conversation.objects.create(owner=user, deployment=sim_deployment)
    socket_url = (
        f"{live_server_url.replace('http://', 'ws://')}/ws/conversations/{conversation.pk}/"
    )
    assert elsewhere.rsplit(":", 1)[0] == live_server_url.rsplit(":", 1)[0], "same host"

    page.goto(f"{elsewhere}/?target={socket_url}")
    expect(page.locator("body")).to_have_attribute("data-result", re.compile(r"closed:\d+"))
    assert page.locator("body").get_attribute("data-opened") is None
    assert page.locator("body").get_attribute("data-read") is None
    assert not Message.objects.filter(conversation=conversation).exists()

    page.goto(f"/c/{conversation.pk}/")
    assert page.evaluate(OPEN_SOCKET, socket_url) == "open", "the chat's own page may"


def test_deactivating_a_person_closes_their_open_conversation(
    browser, page, live_server_url, user, make_sim_deployment
) -> None:
    sign_in(page, live_server_url, user)
    deployment = make_sim_deployment(name="Slow", options="tps=40,words=1200")
    conversation = Conversation.objects.create(owner=user, deployment=deployment)
    page.goto(f"/c/{conversation.pk}/")
    page.get_by_label("Message", exact=True).fill("Write me something long")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()

    admin = UserFactory(is_staff=True, is_superuser=True)
    staff = browser.new_context(base_url=live_server_url).new_page()
    staff.goto("/account/sign-in/")
    staff.get_by_label("Username").fill(admin.username)
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    staff.goto(f"/admin/accounts/user/{user.pk}/change/")
    staff.get_by_label("Active").uncheck()
    staff.get_by_role("button", name="Save", exact=True).click()
    expect(staff.locator(".messagelist")).to_contain_text("was changed successfully")
    staff.context.close()

    expect(page.get_by_role("alert")).to_contain_text("Your account was deactivated")
    expect(page.locator("#connection-status")).to_contain_text("reload")
    reply = Message.objects.get(conversation=conversation, role=Message.Role.ASSISTANT)
    deadline = time.monotonic() + 10
    while reply.in_flight and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # the reply task runs in the server's thread
        reply.refresh_from_db()
    assert reply.status == Message.Status.CANCELLED, "stopped, not left writing"
    assert reply.text, "the partial text is kept"
    page.reload()
    expect(page).to_have_url(re.compile(r"/account/sign-in/"))


def test_a_reconnecting_page_asks_for_what_came_after_its_last_message(
    page, live_server_url, user, sim_deployment
) -> None:
    """The server half (what ``?after=`` answers) is in tests/chat/test_catch_up.py."""
    sign_in(page, live_server_url, user)
    conversation = Conversation.objects.create(owner=user, deployment=sim_deployment)
    page.goto(f"/c/{conversation.pk}/")
    page.get_by_label("Message", exact=True).fill("Before the nap")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article.message-assistant").last).to_have_attribute(
        "data-status", "completed"
    )
    reply = Message.objects.get(conversation=conversation, role=Message.Role.ASSISTANT)

    url = page.evaluate(
        """() => {
          const socket = htmx.createWebSocket("/ws/conversations/1/");
          socket.close();
          return socket.url;
        }"""
    )
    assert url.endswith(f"/ws/conversations/1/?after={reply.pk}")
