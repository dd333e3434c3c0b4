"""A reply while our own infrastructure fails: PostgreSQL restarted or down, Redis killed, a
tab that never reads, the process killed. Each case checks what the person sees, what is
saved, and that every copy the upstream stored has its ledger row."""

import os
import signal
import socket

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import browser  # noqa: F401  (Debian's chromium, as the page tests use it)
from tests.faults.chat import (
    FINAL,
    Tab,
    add_conversation,
    app_settings,
    copies_without_row,
    query,
    replies,
    upstream_creates,
    upstream_text,
)
from tests.faults.conftest import sign_in, wait_for

STREAMING = r'hx-swap-oob="beforeend">[^<]'
LONG = "tps=150,words=600"  # about 4 s of streaming


def test_a_reply_survives_postgresql_restarting_mid_reply(
    postgres, database_url, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, LONG)
    app = start_app(database_url=database_url, **app_settings())
    tab = Tab.open(app, conversation)
    tab.send("Tell me a long story")
    tab.until(STREAMING)

    postgres.restart()

    final = tab.until(FINAL, within=60)
    assert "status-completed" in final, app.output()
    ((_, status, text, response_id),) = replies(database_url, conversation)
    assert status == "completed"
    assert len(text.split()) >= 500, "the whole reply was kept"
    assert response_id
    assert copies_without_row(database_url, clean_simulator) == []
    assert len(upstream_creates(clean_simulator)) == 1


def test_a_reply_that_ends_while_postgresql_is_stopped_is_saved_when_it_returns(
    postgres, database_url, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, "tps=300,words=300")
    app = start_app(database_url=database_url, **app_settings(CHAT_SAVE_RETRY_SECONDS="120"))
    tab = Tab.open(app, conversation)
    tab.send("Go on")
    tab.until(STREAMING)

    postgres.stop()
    wait_for(lambda: "save failed; retrying" in app.output(), "the save never met the outage")
    postgres.start()

    try:
        final = tab.until(FINAL, within=60)
    except TimeoutError as error:
        raise AssertionError(app.output()) from error
    assert "status-completed" in final
    ((_, status, text, _),) = replies(database_url, conversation)
    assert status == "completed"
    assert len(text.split()) >= 250
    assert copies_without_row(database_url, clean_simulator) == []


def test_a_turn_while_postgresql_is_down_gets_words_and_asks_nobody(
    postgres, database_url, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, "tps=0,words=20")
    app = start_app(database_url=database_url, **app_settings())
    tab = Tab.open(app, conversation)
    postgres.stop()

    tab.send("Is anyone there?")
    notice = tab.until(r'role="alert"')
    assert "cannot reach its database" in notice
    assert "still in the box" in notice
    assert upstream_creates(clean_simulator) == [], "no request the turn could not record"

    postgres.start()
    tab.send("And now?")
    assert "status-completed" in tab.until(FINAL), "the same socket works again"
    assert len(upstream_creates(clean_simulator)) == 1


def test_a_reply_completes_and_is_saved_while_redis_is_killed(
    postgres, database_url, redis_server, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, LONG)
    app = start_app(database_url=database_url, redis_url=redis_server.url, **app_settings())
    tab = Tab.open(app, conversation)
    tab.send("Tell me a long story")
    tab.until(STREAMING)

    redis_server.kill()

    assert "status-completed" in tab.until(FINAL, within=60), app.output()
    ((_, status, text, _),) = replies(database_url, conversation)
    assert status == "completed"
    assert len(text.split()) >= 500
    tab.send("[[sim tps=0]] Still there?")
    assert "status-completed" in tab.until(FINAL), "turns go on without Redis"
    another = Tab.open(app, conversation)
    another.send("[[sim tps=0]] A new tab, too")
    assert "status-completed" in another.until(FINAL), "sockets connect without Redis"
    assert copies_without_row(database_url, clean_simulator) == []
    redis_server.start()


def test_a_tab_that_never_reads_slows_nobody(
    postgres, database_url, clean_simulator, start_app
) -> None:
    """A raw socket that never reads sits beside a tab that does; a long reply goes to the
    second at once, and is saved, while the first is dropped for falling behind."""
    conversation = add_conversation(database_url, clean_simulator, "tps=0,words=20000")
    app = start_app(database_url=database_url, **app_settings(CHAT_WATCHER_MAX_BYTES="65536"))
    reader = Tab.open(app, conversation)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a window that soon fills
    stuck.connect(("127.0.0.1", app.port))
    cookie = reader.socket.request.headers["Cookie"]
    stuck.sendall(
        (
            f"GET /ws/conversations/{conversation}/ HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
            f"Origin: {app.base_url}\r\nCookie: {cookie}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        assert b"101" in stuck.recv(12), "the stuck tab's socket was accepted"
        reader.send("Write me a book")
        assert "status-completed" in reader.until(FINAL, within=60), app.output()
        ((_, status, text, _),) = replies(database_url, conversation)
        assert status == "completed"
        assert len(text) > 80_000
    finally:
        stuck.close()


def test_a_process_killed_mid_reply_leaves_its_copy_in_the_ledger(
    postgres, database_url, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, LONG)
    app = start_app(database_url=database_url, **app_settings())
    tab = Tab.open(app, conversation)
    tab.send("Tell me a long story")
    tab.until(STREAMING)

    os.kill(app.process.pid, signal.SIGKILL)
    app.process.wait(timeout=10)

    assert copies_without_row(database_url, clean_simulator) == []
    rows = query(database_url, "SELECT state, conversation_id FROM chat_storedresponse")
    assert rows == [("live", conversation)], "a row the retention sweep can finish"
    ((_, status, _, _),) = replies(database_url, conversation)
    assert status in {"pending", "streaming"}, "left for the next turn to take over"


def resume_point_saved(database_url: str, conversation: int) -> bool:
    """Whether the reply's lease has saved where it stands on Azure (for a takeover)."""
    rows = query(
        database_url,
        "SELECT resume_response_id FROM chat_message "
        "WHERE conversation_id = %s AND role = 'assistant'",
        conversation,
    )
    return bool(rows and rows[0][0])


def test_a_background_reply_whose_process_is_killed_is_finished_by_another(
    postgres, database_url, clean_simulator, start_app
) -> None:
    """Background mode: the reply goes on on Azure; the process that notices the dead one's
    lease has run out takes it over and resumes it, with nothing lost and nothing repeated."""
    conversation = add_conversation(database_url, clean_simulator, LONG, background_mode=True)
    settings = app_settings(CHAT_REPLY_LEASE_SECONDS="3")
    first = start_app(database_url=database_url, **settings)
    second = start_app(database_url=database_url, **settings)
    tab = Tab.open(first, conversation)
    tab.send("Tell me a long story")
    tab.until(STREAMING)

    wait_for(
        lambda: resume_point_saved(database_url, conversation),
        "the lease never saved where the reply stood",
    )
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)

    def finished() -> bool:
        return replies(database_url, conversation)[0][1] not in {"pending", "streaming"}

    wait_for(finished, "no process finished the reply", timeout=60)
    ((_, status, text, response_id),) = replies(database_url, conversation)
    assert status == "completed", second.output()
    assert text == upstream_text(clean_simulator, response_id), "nothing lost, nothing repeated"
    assert len(upstream_creates(clean_simulator)) == 1, "resumed from Azure's copy, not asked again"
    assert copies_without_row(database_url, clean_simulator) == []


@pytest.mark.parametrize("action", ["follow", "stop"])
def test_a_tab_on_another_process_follows_and_stops_a_reply_over_redis(
    postgres, database_url, redis_server, clean_simulator, start_app, action
) -> None:
    conversation = add_conversation(database_url, clean_simulator, LONG)
    settings = app_settings()
    first = start_app(database_url=database_url, redis_url=redis_server.url, **settings)
    second = start_app(database_url=database_url, redis_url=redis_server.url, **settings)
    here = Tab.open(first, conversation)
    there = Tab.open(second, conversation)
    here.send("Tell me a long story")
    there.until(r"message-assistant status-pending")
    # Progress, from the first process: the reply so far, rendered there.
    there.until(r'class="stream-tail"><(?!span)', within=10)
    ((reply_id, _, _, _),) = replies(database_url, conversation)
    if action == "stop":
        there.stop(reply_id)
        assert "status-cancelled" in there.until(FINAL)
        assert "status-cancelled" in here.until(FINAL)
        assert replies(database_url, conversation)[0][1] == "cancelled"
    else:
        assert "status-completed" in there.until(FINAL, within=60)
    assert copies_without_row(database_url, clean_simulator) == []


def test_a_tab_on_another_process_catches_up_when_redis_lost_the_finish(
    postgres, database_url, redis_server, clean_simulator, start_app
) -> None:
    conversation = add_conversation(database_url, clean_simulator, "tps=150,words=300")
    settings = app_settings(CHAT_REMOTE_POLL_SECONDS="0.5")
    first = start_app(database_url=database_url, redis_url=redis_server.url, **settings)
    second = start_app(database_url=database_url, redis_url=redis_server.url, **settings)
    here = Tab.open(first, conversation)
    there = Tab.open(second, conversation)
    here.send("Tell me a story")
    there.until(r"message-assistant status-pending")

    redis_server.kill()

    assert "status-completed" in here.until(FINAL, within=60)
    assert "status-completed" in there.until(FINAL, within=30), "read from the database"
    redis_server.start()


def test_in_chromium_a_background_reply_goes_on_after_its_process_is_killed(
    postgres,
    database_url,
    clean_simulator,
    start_app,
    browser,  # noqa: F811
) -> None:
    """The person watches a background reply, its process dies; opening the conversation on
    the site's other process shows it continue there and complete, with nothing lost."""
    conversation = add_conversation(database_url, clean_simulator, LONG, background_mode=True)
    settings = app_settings(CHAT_REPLY_LEASE_SECONDS="3")
    first = start_app(database_url=database_url, **settings)
    second = start_app(database_url=database_url, **settings)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # Cookies belong to the host, not the port: one sign-in serves both processes.
    context.add_cookies(
        [
            {"name": name, "value": value, "url": first.base_url}
            for name, value in sign_in(first.base_url).cookies.items()
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{first.base_url}/c/{conversation}/")
    page.get_by_label("Message", exact=True).fill("Tell me a long story")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator(".message-stream")).not_to_be_empty()
    wait_for(
        lambda: resume_point_saved(database_url, conversation),
        "the lease never saved where the reply stood",
    )
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)

    page.goto(f"{second.base_url}/c/{conversation}/")
    reply = page.locator("article.message-assistant").last
    expect(reply).to_have_attribute("data-status", "completed", timeout=60_000)
    ((_, status, text, response_id),) = replies(database_url, conversation)
    assert status == "completed", second.output()
    assert text == upstream_text(clean_simulator, response_id), "nothing lost, nothing repeated"
    expect(reply.get_by_role("button", name="Regenerate this reply")).to_be_visible()
    assert len(upstream_creates(clean_simulator)) == 1, "resumed from Azure's copy, not asked again"
    context.close()
