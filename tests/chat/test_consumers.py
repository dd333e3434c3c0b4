"""The conversation websocket, against the running simulator over HTTP."""

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db.backends.utils import CursorWrapper

from chat import replies
from chat.models import Conversation, Message, StoredResponse
from tests.chat.sockets import (
    connect,
    conversation_on,
    model_requests,
    receive_until,
    send_payload,
    turn_and_wait,
    wait_for_reply,
)
from tests.factories import UserFactory, session_for, socket_headers

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Every query from any thread: the turn's work happens on Django's database thread."""
    executed: list[str] = []
    original = CursorWrapper._execute

    def counting(self, sql, params, *ignored_wrappers):
        executed.append(sql)
        return original(self, sql, params, *ignored_wrappers)

    CursorWrapper._execute = counting
    try:
        yield executed
    finally:
        CursorWrapper._execute = original


async def test_a_whole_turn_streams_and_is_saved(owner, conversation, clean_simulator) -> None:
    communicator, connected, _ = await connect(owner, conversation)
    assert connected
    await communicator.send_to(text_data=send_payload("Hello there"))
    frames = await receive_until(communicator, r'class="message message-assistant status-completed')
    assert "Hello there" in frames
    assert 'hx-swap-oob="beforeend"' in frames, "deltas streamed as out-of-band appends"
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.COMPLETED
    assert reply.text
    assert reply.html.startswith("<")
    assert reply.response_id.startswith("resp_")
    assert reply.output_tokens > 0
    assert await StoredResponse.objects.filter(response_id=reply.response_id).aexists()
    await communicator.disconnect()


async def send_and_wait(
    communicator: WebsocketCommunicator, conversation: Conversation, text: str, **extra: str
) -> Message:
    await communicator.send_to(text_data=send_payload(text, **extra))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    return await wait_for_reply(conversation)


async def forgotten_early_requests() -> list[StoredResponse]:
    """The ledger rows of early requests the turns did not use, once they are written: each
    copy Azure made of one is queued for deletion, with no conversation to belong to."""
    for _ in range(200):
        rows = [r async for r in StoredResponse.objects.filter(conversation=None)]
        if rows:
            return rows
        await asyncio.sleep(0.025)
    return []


@pytest.fixture
def early_requests(settings):
    """Early requests on (they are off by default)."""
    settings.CHAT_EARLY_REQUEST = True


async def test_two_turns_are_chained_by_previous_response_id(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    first = await send_and_wait(communicator, conversation, "First question")
    second = await send_and_wait(communicator, conversation, "Second question")
    await communicator.disconnect()

    bodies = model_requests(clean_simulator)
    assert len(bodies) == 2, "one request per turn"
    assert bodies[0].get("previous_response_id") is None
    assert bodies[1]["previous_response_id"] == first.response_id
    assert bodies[1]["input"] == "Second question", "only the new turn travels with the chain"
    assert bodies[1]["store"] is True
    assert not second.context_rebuilt
    await conversation.arefresh_from_db()
    assert conversation.head_response_id == second.response_id
    assert not await StoredResponse.objects.filter(conversation=None).aexists()


@pytest.mark.parametrize("early", [True, False])
async def test_the_model_is_asked_while_the_turn_is_being_saved(
    owner, conversation, clean_simulator, monkeypatch, settings, early
) -> None:
    """The request of a turn continuing the chain goes out before its save is done, so the
    first token does not wait for the database (unless CHAT_EARLY_REQUEST is off); the text is
    saved before the reply starts either way."""
    from chat import services

    settings.CHAT_EARLY_REQUEST = early
    asked_during_save: list[bool] = []
    turn_start = services.turn_start

    def slow_turn_start(**arguments):
        deadline = time.monotonic() + 5
        while len(model_requests(clean_simulator)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked_during_save.append(len(model_requests(clean_simulator)) == 2)
        return turn_start(**arguments)

    communicator, _, _ = await connect(owner, conversation)
    first = await send_and_wait(communicator, conversation, "First")
    monkeypatch.setattr(services, "turn_start", slow_turn_start)
    second = await send_and_wait(communicator, conversation, "Second")
    await communicator.disconnect()

    assert asked_during_save == [early]
    bodies = model_requests(clean_simulator)
    assert len(bodies) == 2
    assert bodies[1]["previous_response_id"] == first.response_id
    assert second.status == Message.Status.COMPLETED
    assert await Message.objects.filter(conversation=conversation, text="Second").aexists()


async def test_a_turn_sent_while_the_last_reply_tidies_up_is_still_asked_early(
    owner, conversation, clean_simulator, monkeypatch, early_requests
) -> None:
    """The final frame goes out before the reply has told other processes it is done; a person
    who sends at once still gets the early request (a slow Redis publish is no reason to wait
    for the database)."""
    from chat import services
    from chat.replies.bridge import Bridge

    tidy = asyncio.Event()
    finished = Bridge.finished
    turn_start = services.turn_start
    asked_during_save: list[bool] = []

    async def slow_finished(self: Bridge) -> None:
        await tidy.wait()
        await finished(self)

    def slow_turn_start(**arguments):
        deadline = time.monotonic() + 5
        while len(model_requests(clean_simulator)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked_during_save.append(len(model_requests(clean_simulator)) == 2)
        tidy.set()
        return turn_start(**arguments)

    monkeypatch.setattr(Bridge, "finished", slow_finished)
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "First")
    first_reply = replies.active_reply(conversation.pk)
    assert first_reply is not None, "the first reply is still tidying up"
    assert first_reply.settled
    monkeypatch.setattr(services, "turn_start", slow_turn_start)
    second = await send_and_wait(communicator, conversation, "Second")
    await communicator.disconnect()

    assert asked_during_save == [True]
    assert second.status == Message.Status.COMPLETED
    assert len(model_requests(clean_simulator)) == 2, "the early request was the one used"


async def test_a_replayed_send_forgets_its_early_request(
    owner, conversation, clean_simulator, early_requests
) -> None:
    """htmx replays a send after reconnecting: no second turn, and the request sent early
    for it is closed and its copy on Azure queued for deletion."""
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "First")
    payload = send_payload("Second")
    await communicator.send_to(text_data=payload)
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    await wait_for_reply(conversation)
    await communicator.send_to(text_data=payload)
    (forgotten,) = await forgotten_early_requests()
    await communicator.disconnect()

    assert await Message.objects.filter(conversation=conversation).acount() == 4
    bodies = model_requests(clean_simulator)
    assert len(bodies) == 3, "the replay was asked early, then forgotten"
    assert forgotten.state == StoredResponse.State.DELETING
    assert forgotten.user_id is None
    assert forgotten.response_id not in {
        m.response_id async for m in Message.objects.filter(conversation=conversation)
    }


async def test_instructions_go_with_every_turn(owner, conversation, clean_simulator) -> None:
    conversation.instructions = "Answer like a pirate."
    await conversation.asave()
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "One")
    await send_and_wait(communicator, conversation, "Two")
    await communicator.disconnect()
    assert [b["instructions"] for b in model_requests(clean_simulator)] == [
        "Answer like a pirate."
    ] * 2


async def test_stateless_deployment_sends_the_whole_history(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, store_policy="stateless")
    communicator, _, _ = await connect(owner, conversation)
    first = await send_and_wait(communicator, conversation, "Remember the number 42")
    await send_and_wait(communicator, conversation, "Which number?")
    await communicator.disconnect()

    second_body = model_requests(clean_simulator)[1]
    assert second_body["store"] is False
    assert "previous_response_id" not in second_body or not second_body["previous_response_id"]
    assert second_body["input"] == [
        {"role": "user", "content": "Remember the number 42"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Which number?"},
    ]
    assert not await StoredResponse.objects.aexists(), "nothing is kept on Azure"


async def test_forgotten_head_is_rebuilt_within_the_same_turn(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    first = await send_and_wait(communicator, conversation, "Remember the word tangerine")
    clean_simulator.expire(first.response_id)
    second = await send_and_wait(communicator, conversation, "[[sim recall]] Which word?")
    await communicator.disconnect()

    bodies = model_requests(clean_simulator)
    assert bodies[1]["previous_response_id"] == first.response_id
    assert "previous_response_id" not in bodies[2] or not bodies[2]["previous_response_id"]
    assert second.status == Message.Status.COMPLETED
    assert second.context_rebuilt
    assert "Remember the word tangerine" in second.text, "the model saw the rebuilt history"
    frames_html = second.html
    assert frames_html


async def test_expired_head_is_not_sent(
    owner, conversation, clean_simulator, early_requests
) -> None:
    from datetime import timedelta

    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "Hello")
    await Conversation.objects.filter(pk=conversation.pk).aupdate(
        head_created_at=conversation.created_at - timedelta(days=31)
    )
    second = await send_and_wait(communicator, conversation, "Again")
    (forgotten,) = await forgotten_early_requests()
    await communicator.disconnect()
    early, body = model_requests(clean_simulator)[1:]
    assert early["previous_response_id"], "the socket's guess, from before the head expired"
    assert not body.get("previous_response_id")
    assert second.context_rebuilt
    assert forgotten.state == StoredResponse.State.DELETING


async def test_another_resource_means_rebuilding(
    owner, conversation, make_sim_deployment, clean_simulator, early_requests
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "Hello")
    other = await database_sync_to_async(make_sim_deployment)(name="Other region")
    # The same simulator under another name: to the app, another resource (another
    # deployment on the same resource would continue the chain).
    other.endpoint = clean_simulator.base_url.replace("127.0.0.1", "localhost")
    await other.asave(update_fields=["endpoint"])
    await Conversation.objects.filter(pk=conversation.pk).aupdate(deployment=other)
    second = await send_and_wait(communicator, conversation, "Again")
    (forgotten,) = await forgotten_early_requests()
    await communicator.disconnect()
    body = model_requests(clean_simulator)[-1]
    assert not body.get("previous_response_id")
    assert body["model"] == other.deployment_name
    assert forgotten.deployment_id == conversation.deployment_id, "asked where it used to be"
    assert second.context_rebuilt
    assert second.deployment_id == other.pk


async def test_stop_keeps_the_partial_text(owner, make_sim_deployment, clean_simulator) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=40,words=400")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Tell me a long story"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    reply_id = (await Message.objects.filter(role="assistant").alast()).pk
    await communicator.send_to(text_data=json.dumps({"action": "stop", "message_id": reply_id}))
    frames = await receive_until(communicator, r"status-cancelled")
    assert "You stopped this reply." in frames
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.CANCELLED
    assert 0 < len(reply.text) < 2000
    await communicator.disconnect()


async def test_closing_the_tab_does_not_stop_the_reply(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=400,words=60")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Hello"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    await communicator.disconnect()

    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.COMPLETED
    assert len(reply.text.split()) >= 50


async def test_reconnecting_mid_stream_catches_up_and_follows(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=100,words=80")
    first, _, _ = await connect(owner, conversation)
    await first.send_to(text_data=send_payload("Hello"))
    await receive_until(first, r'hx-swap-oob="beforeend">[^<]')
    await first.disconnect()

    second, _, _ = await connect(owner, conversation)
    frames = await receive_until(second, r"message-assistant status-completed")
    assert 'hx-swap-oob="outerHTML">' in frames, "the text so far replaces the stale page"
    await second.disconnect()


async def test_a_second_tab_sees_the_stream_and_can_stop_it(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=40,words=400")
    tab_one, _, _ = await connect(owner, conversation)
    tab_two, _, _ = await connect(owner, conversation)
    await tab_one.send_to(text_data=send_payload("Hello from tab one"))
    seen = await receive_until(tab_two, r'hx-swap-oob="beforeend">[^<]')
    assert "Hello from tab one" in seen
    reply = await Message.objects.filter(role="assistant").alast()
    await tab_two.send_to(text_data=json.dumps({"action": "stop", "message_id": reply.pk}))
    await receive_until(tab_one, r"status-cancelled")
    assert (await wait_for_reply(conversation)).status == Message.Status.CANCELLED
    await tab_one.disconnect()
    await tab_two.disconnect()


async def test_a_send_while_a_reply_streams_is_refused(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=40,words=200")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("First"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    await communicator.send_to(text_data=send_payload("Second, too soon"))
    frames = await receive_until(communicator, r"still being written")
    assert 'id="notices"' in frames
    assert not await Message.objects.filter(text="Second, too soon").aexists()
    await replies.reply_stop(conversation_id=conversation.pk)
    await wait_for_reply(conversation)
    await communicator.disconnect()


async def test_double_send_makes_one_turn(owner, conversation, clean_simulator) -> None:
    communicator, _, _ = await connect(owner, conversation)
    payload = send_payload("Only once")
    await communicator.send_to(text_data=payload)
    await communicator.send_to(text_data=payload)
    await receive_until(communicator, r"message-assistant status-completed")
    await wait_for_reply(conversation)
    await communicator.disconnect()
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    assert len(model_requests(clean_simulator)) == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (json.dumps({"text": ""}), "Type a message before sending."),
        (json.dumps({"text": "   \n  "}), "Type a message before sending."),
        (json.dumps({"text": "x" * 40_000}), "That message is too long"),
        (json.dumps({"text": "hi", "client_id": "not-a-uuid"}), "malformed message id"),
        (json.dumps({"text": "half an emoji \ud83d"}), "broken character"),
        ("{not json", "could not read"),
        (json.dumps(["a", "list"]), "could not read"),
        (json.dumps({"text": {"nested": 1}}), "could not read"),
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "could not read"),
        (json.dumps({"text": "x" * 300_000}), "at most 32,000 characters"),
        (json.dumps({"text": "half a pair \ud83d here"}), "half of an emoji"),
    ],
)
async def test_bad_payloads_get_a_clear_error_and_the_socket_stays_open(
    owner, conversation, clean_simulator, payload, expected
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=payload)
    frame = await communicator.receive_from(timeout=5)
    assert expected in frame
    assert 'role="alert"' in frame
    await communicator.send_to(text_data=send_payload("Still here"))
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()


async def test_rate_limit_answers_with_the_wait(
    owner, conversation, clean_simulator, settings
) -> None:
    settings.CHAT_RATE_LIMIT = 1
    # Turns are counted in windows aligned to the clock: no window may end within the test.
    settings.CHAT_RATE_WINDOW = 86_400
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "One")
    await communicator.send_to(text_data=send_payload("Two"))
    frames = await receive_until(communicator, r"Try again in \d+ seconds")
    assert "faster than allowed" in frames
    assert not await Message.objects.filter(text="Two").aexists()
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("directive", "status", "kind", "words"),
    [
        ("fault=rate_limit retry_after_ms=30000", "failed", "rate_limited", "Try again in 30"),
        ("fault=content_filter_prompt category=violence", "failed", "content_filtered", "violence"),
        ("fault=server_error", "failed", "unavailable", ""),
        ("fault=unavailable", "failed", "unavailable", ""),
        ("fault=cut after=5", "incomplete", "stream_dropped", ""),
        ("fault=content_filter_output after=5", "incomplete", "content_filtered", ""),
        ("fault=failed after=0", "failed", "", ""),
        ("fault=error_event_nested after=0", "failed", "", ""),
        ("fault=error_event after=3", "incomplete", "", ""),
    ],
)
async def test_every_failure_is_saved_with_an_explanation_and_retry(
    owner, conversation, clean_simulator, directive, status, kind, words
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    reply = await send_and_wait(communicator, conversation, f"[[sim {directive}]] Hello")
    assert reply.status == status
    assert reply.error, "a human explanation"
    if kind:
        assert reply.error_code == kind
    if words:
        assert words in reply.error
    if status == "incomplete":
        assert reply.text, "the partial text is kept"
    user_message = await Message.objects.filter(conversation=conversation, role="user").alast()
    assert user_message.text.endswith("Hello"), "the user's text is never lost"

    await communicator.send_to(text_data=json.dumps({"action": "retry", "message_id": reply.pk}))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    retried = await wait_for_reply(conversation)
    assert retried.pk == reply.pk
    await communicator.disconnect()


async def test_rejected_credentials_tell_the_user_to_contact_an_admin(
    owner, make_sim_deployment, clean_strict_simulator, monkeypatch
) -> None:
    deployment = await database_sync_to_async(make_sim_deployment)(
        api_key_env="WRONG_API_KEY", server=clean_strict_simulator
    )
    monkeypatch.setenv("WRONG_API_KEY", "not-the-key")
    conversation = await Conversation.objects.acreate(owner=owner, deployment=deployment)
    communicator, _, _ = await connect(owner, conversation)
    reply = await send_and_wait(communicator, conversation, "Hello")
    await communicator.disconnect()
    assert reply.error_code == "auth_failed"
    assert "administrator" in reply.error
    assert "not-the-key" not in reply.error


async def test_stalled_stream_keeps_partial_text(
    owner, conversation, clean_simulator, settings
) -> None:
    settings.LLM_READ_TIMEOUT = 0.5
    communicator, _, _ = await connect(owner, conversation)
    reply = await send_and_wait(communicator, conversation, "[[sim fault=stall after=4]] Hi")
    await communicator.disconnect()
    assert reply.status == Message.Status.INCOMPLETE
    assert reply.text
    assert reply.error


async def test_unicode_is_stored_exactly(owner, conversation, clean_simulator) -> None:
    text = "👩🏽‍💻 مرحبا بالعالم שלום e\u0301 🇸🇪 — ok"
    communicator, _, _ = await connect(owner, conversation)
    reply = await send_and_wait(communicator, conversation, f"[[sim echo burst=1]]{text}")
    await communicator.disconnect()
    user_message = await Message.objects.filter(conversation=conversation, role="user").alast()
    assert user_message.text == f"[[sim echo burst=1]]{text}"
    assert reply.text == text


@pytest.mark.parametrize("history", [1, 500])
async def test_queries_per_turn_are_few_and_constant(
    owner, conversation, clean_simulator, history
) -> None:
    await Message.objects.abulk_create(
        [
            Message(conversation=conversation, role=role, text=f"old {i}")
            for i in range(history)
            for role in ("user", "assistant")
        ]
    )
    communicator, _, _ = await connect(owner, conversation)
    # How the latest reply ended, shown on connecting.
    await receive_until(communicator, r"message-assistant status-completed")
    with count_queries() as queries:
        await communicator.send_to(text_data=send_payload("[[sim words=200]] Count me"))
        await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()
    print(f"queries per turn with {history} old messages: {len(queries)}")
    # Two transactions (the turn, the save), the ledger row written ahead, and the history
    # once, since this conversation has no stored head; the session check, who may use the
    # deployment and the replay check are read with the lock. SQLite's BEGIN IMMEDIATE counts
    # as a query of its own.
    from django.db import connection

    limit = 11 if connection.vendor == "sqlite" else 9
    assert len(queries) <= limit, queries
    updates = [sql for sql in queries[:-3] if sql.lstrip().startswith("UPDATE")]
    assert not any("message" in sql for sql in updates), "none per delta"


async def test_anonymous_socket_is_refused(conversation) -> None:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    _, connected, code = await connect(AnonymousUser(), conversation, headers=headers)
    assert not connected
    assert code == 4401


async def test_another_users_conversation_is_refused_without_a_hint(conversation) -> None:
    stranger = await database_sync_to_async(UserFactory)()
    _, connected, code = await connect(stranger, conversation)
    assert not connected
    assert code == 4404
    missing = Conversation(pk=conversation.pk + 1000)
    _, connected_missing, code_missing = await connect(stranger, missing)
    assert not connected_missing
    assert code_missing == code, "the same answer as for a missing one"


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"https://evil.example", b"127.0.0.1"),
        (b"http://127.0.0.1:8080", b"127.0.0.1"),  # the same host, another port
        (b"http://127.0.0.1:8080", b"127.0.0.1:8000"),
        (b"https://127.0.0.1", b"127.0.0.1"),  # another scheme
        (b"http://127.0.0.1.evil.example", b"127.0.0.1"),
        (b"null", b"127.0.0.1"),
        (b"http://127.0.0.1", b"evil.example"),  # a host this site does not serve
    ],
)
async def test_a_socket_from_any_other_origin_is_refused(owner, conversation, origin, host) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    _, connected, _ = await connect(
        owner, conversation, headers=socket_headers(session_key, origin=origin, host=host)
    )
    assert not connected


async def test_a_socket_from_its_own_origin_or_a_listed_one_is_accepted(
    owner, conversation, settings
) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    own, connected, _ = await connect(
        owner,
        conversation,
        headers=socket_headers(
            session_key, origin=b"http://127.0.0.1:8000", host=b"127.0.0.1:8000"
        ),
    )
    assert connected
    await own.disconnect()
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://chat.example.org"]
    listed, connected, _ = await connect(
        owner,
        conversation,
        headers=socket_headers(session_key, origin=b"https://chat.example.org", host=b"127.0.0.1"),
    )
    assert connected
    await listed.disconnect()


async def test_a_missing_origin_is_refused(owner, conversation) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    headers = [h for h in socket_headers(session_key) if h[0] != b"origin"]
    _, connected, _ = await connect(owner, conversation, headers=headers)
    assert not connected


async def test_reconnecting_after_the_reply_finished_shows_it(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=200,words=60")
    first, _, _ = await connect(owner, conversation)
    await first.send_to(text_data=send_payload("Hello"))
    await receive_until(first, r'hx-swap-oob="beforeend">[^<]')
    await first.disconnect()
    reply = await wait_for_reply(conversation)

    again, _, _ = await connect(owner, conversation)
    frame = await again.receive_from(timeout=5)
    assert f'id="message-{reply.pk}"' in frame
    assert "status-completed" in frame
    assert 'id="send-button"' in frame, "the composer is ready again"
    await again.disconnect()


async def test_failover_moves_the_turn_to_the_next_region_with_context_rebuilt(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    settings.FAILOVER_FAILURE_THRESHOLD = 1
    make = database_sync_to_async(make_sim_deployment)
    sweden = await make(
        name="Sweden",
        options="fault=rate_limit,retry_after_ms=1000",
        failover_group="gpt41",
        priority=1,
    )
    france = await make(name="France", region="francecentral", failover_group="gpt41", priority=2)
    conversation = await Conversation.objects.acreate(owner=owner, deployment=sweden)
    communicator, _, _ = await connect(owner, conversation)
    reply = await send_and_wait(communicator, conversation, "Hello from Stockholm")
    assert reply.status == Message.Status.COMPLETED
    assert reply.deployment_id == france.pk, "the message records which deployment answered"
    assert reply.error == reply.error_code == "", "the member that failed leaves no error behind"
    assert [b["model"] for b in model_requests(clean_simulator)] == [
        sweden.deployment_name,
        france.deployment_name,
    ], "a busy member is not waited for when another can answer"

    again = await send_and_wait(communicator, conversation, "And again")
    await communicator.disconnect()
    assert again.deployment_id == france.pk
    assert [b["model"] for b in model_requests(clean_simulator)[2:]] == [france.deployment_name], (
        "Sweden is cooling down and is skipped"
    )
    assert again.context_rebuilt is False, "France continues its own chain"


async def test_the_quota_is_that_of_the_member_that_will_be_asked(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    """Sweden is cooling down, so France would answer: France's quota decides, and the tokens
    France answered with count against France."""
    settings.FAILOVER_FAILURE_THRESHOLD = 1
    make = database_sync_to_async(make_sim_deployment)
    sweden = await make(
        name="Sweden", options="fault=server_error", failover_group="gpt41", priority=1
    )
    france = await make(name="France", failover_group="gpt41", priority=2, daily_token_quota=40)
    conversation = await Conversation.objects.acreate(owner=owner, deployment=sweden)
    communicator, _, _ = await connect(owner, conversation)
    first = await send_and_wait(communicator, conversation, "[[sim words=60]] Use France up")
    assert first.deployment_id == france.pk
    assert first.total_tokens > 40
    await communicator.send_to(text_data=send_payload("One more"))
    frames = await receive_until(communicator, r"quota")
    assert "on France" in frames
    assert not await Message.objects.filter(text="One more").aexists()
    await communicator.disconnect()


async def test_the_daily_quota_refuses_a_turn_before_it_starts(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, daily_token_quota=50)
    communicator, _, _ = await connect(owner, conversation)
    await send_and_wait(communicator, conversation, "[[sim words=100]] Use up my tokens")
    await communicator.send_to(text_data=send_payload("One more"))
    frames = await receive_until(communicator, r"quota")
    assert "50 tokens" in frames
    assert not await Message.objects.filter(text="One more").aexists()
    assert len(model_requests(clean_simulator)) == 1
    await communicator.disconnect()


async def test_deleting_a_conversation_mid_reply_leaves_no_copy_behind(
    owner, make_sim_deployment, clean_simulator
) -> None:
    from chat import services

    conversation = await conversation_on(owner, make_sim_deployment, options="tps=100,words=80")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Hello"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    conversation_id = conversation.pk
    await database_sync_to_async(services.conversation_delete)(conversation=conversation)
    await communicator.disconnect()

    for _ in range(200):
        if replies.active_reply(conversation_id) is None:
            break
        await asyncio.sleep(0.025)
    rows = [row async for row in StoredResponse.objects.all()]
    assert len(rows) == 1, "the reply's copy on Azure is in the ledger"
    assert rows[0].state == StoredResponse.State.DELETING
    assert rows[0].response_id.startswith("resp_")
    assert not await Message.objects.filter(conversation_id=conversation_id).aexists()


async def test_a_database_error_after_the_save_still_gives_the_saved_turn_its_reply(
    owner, conversation, clean_simulator, monkeypatch
) -> None:
    """The reply's first database work rides the turn's own trip; if only that part fails,
    the turn is saved all the same, so the person is not told it was not sent, and the reply
    prepares on its own."""
    from django.db import DatabaseError

    from chat.replies import runner

    prepare = runner.reply_prepare
    failures = []

    def failing_once(turn):
        if not failures:
            failures.append(turn)
            raise DatabaseError("connection lost")
        return prepare(turn)

    monkeypatch.setattr(runner, "reply_prepare", failing_once)
    communicator, _, _ = await connect(owner, conversation)
    frames, reply = await turn_and_wait(communicator, conversation, "[[sim echo]]still here")
    await communicator.disconnect()
    assert failures, "the failure was injected"
    assert "cannot reach its database" not in frames
    assert reply.status == Message.Status.COMPLETED
    assert reply.text == "still here"
