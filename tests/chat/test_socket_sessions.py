"""Sockets follow their session: sign-out, a changed password, deactivation and expiry end them,
and the last two stop the user's replies in flight."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chat import socket_slots
from chat.models import Conversation, Message, StoredResponse
from tests.chat.sockets import connect, conversation_on, receive_until, send_payload, wait_for_reply
from tests.factories import PASSWORD, UserFactory, session_for

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = "tps=40,words=400"


@pytest.fixture
def owner(db):
    return UserFactory()


def browser(session_key: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


async def streaming_socket(owner, make_sim_deployment, session_key: str, options: str = SLOW):
    """A socket open on a conversation whose reply is streaming."""
    conversation = await conversation_on(owner, make_sim_deployment, options=options)
    communicator, connected, _ = await connect(owner, conversation, session_key=session_key)
    assert connected
    await communicator.send_to(text_data=send_payload("Tell me a long story"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    return conversation, communicator


async def closed_with(communicator, code: int, notice: str) -> None:
    frames = await receive_until(communicator, notice)
    assert 'role="alert"' in frames
    output = await communicator.receive_output(timeout=5)
    while output["type"] != "websocket.close":
        output = await communicator.receive_output(timeout=5)
    assert output["code"] == code


async def test_signing_out_in_another_tab_closes_that_sessions_sockets(
    owner, make_sim_deployment, clean_simulator
) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    other_session = await database_sync_to_async(session_for)(owner)
    conversation, signed_out = await streaming_socket(
        owner, make_sim_deployment, session_key, options="tps=100,words=150"
    )
    elsewhere, connected, _ = await connect(owner, conversation, session_key=other_session)
    assert connected

    response = await sync_to_async(browser(session_key).post)("/account/sign-out/")
    assert response.status_code == 302

    await closed_with(signed_out, 4401, "You signed out in another tab")
    # The other session's tab stays, and the reply goes on like a closed tab's.
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.COMPLETED
    await receive_until(elsewhere, r"message-assistant status-completed")
    await elsewhere.disconnect()


@pytest.mark.parametrize("how", ["password_change_page", "admin_sets_password"])
async def test_a_changed_password_closes_every_socket_and_stops_the_replies(
    owner, make_sim_deployment, clean_simulator, how
) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    conversation, communicator = await streaming_socket(owner, make_sim_deployment, session_key)

    if how == "password_change_page":
        response = await sync_to_async(browser(session_key).post)(
            "/account/password/",
            {
                "old_password": PASSWORD,
                "new_password1": "a new and long passphrase",
                "new_password2": "a new and long passphrase",
            },
        )
        assert response.status_code == 302
    else:

        def set_password() -> None:
            user = User.objects.get(pk=owner.pk)
            user.set_password("a new and long passphrase")
            user.save()

        await database_sync_to_async(set_password)()

    await closed_with(communicator, 4401, "Your password was changed")
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.CANCELLED, "stopped, not left writing"
    assert reply.text, "the partial text is kept"
    row = await StoredResponse.objects.aget(response_id=reply.response_id)
    assert row.state == StoredResponse.State.LIVE, "recorded, like any stopped reply's copy"


async def test_deactivation_closes_every_socket_stops_the_replies_and_deletes_their_copies(
    owner, make_sim_deployment, clean_simulator
) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    conversation, communicator = await streaming_socket(owner, make_sim_deployment, session_key)

    def deactivate() -> None:
        user = User.objects.get(pk=owner.pk)
        user.is_active = False
        user.save()

    await database_sync_to_async(deactivate)()

    await closed_with(communicator, 4401, "Your account was deactivated")
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.CANCELLED
    assert reply.text
    row = await StoredResponse.objects.aget(response_id=reply.response_id)
    assert row.state == StoredResponse.State.DELETING, "a deactivated user's copy is deleted"
    assert not await Session.objects.filter(session_key=session_key).aexists()


@pytest.mark.parametrize("action", ["send", "retry", "stop"])
async def test_an_expired_session_is_refused_at_the_next_frame(
    owner, make_sim_deployment, clean_simulator, action
) -> None:
    """Expiry sends no event; the turn's own check refuses, as in a process that missed one."""
    session_key = await database_sync_to_async(session_for)(owner)
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=400,words=5")
    communicator, _, _ = await connect(owner, conversation, session_key=session_key)
    await communicator.send_to(text_data=send_payload("First"))
    await receive_until(communicator, r"message-assistant status-completed")
    reply = await wait_for_reply(conversation)

    await Session.objects.filter(session_key=session_key).aupdate(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    frames = {
        "send": send_payload("Second"),
        "retry": json.dumps({"action": "retry", "message_id": reply.pk}),
        "stop": json.dumps({"action": "stop", "message_id": reply.pk}),
    }
    await communicator.send_to(text_data=frames[action])
    await closed_with(communicator, 4401, "Your session has ended")
    assert not await Message.objects.filter(text="Second").aexists()
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    refreshed = await Message.objects.aget(pk=reply.pk)
    assert refreshed.status == Message.Status.COMPLETED, "the retry did not start"


async def test_a_session_deleted_behind_the_sockets_back_is_refused(
    owner, make_sim_deployment, clean_simulator
) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    conversation = await conversation_on(owner, make_sim_deployment)
    communicator, _, _ = await connect(owner, conversation, session_key=session_key)
    await Session.objects.filter(session_key=session_key).adelete()
    await communicator.send_to(text_data=send_payload("Anyone there?"))
    await closed_with(communicator, 4401, "Your session has ended")
    assert not await Message.objects.filter(conversation=conversation).aexists()


async def test_retry_counts_against_the_rate_limit(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    """Stop, Retry, Stop, Retry… generates no more than sending would."""
    settings.CHAT_RATE_LIMIT = 2
    # Turns are counted in windows aligned to the clock: no window may end within the test.
    settings.CHAT_RATE_WINDOW = 86_400
    conversation = await conversation_on(owner, make_sim_deployment, options=SLOW)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Go"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    reply = await Message.objects.filter(conversation=conversation, role="assistant").alast()
    stop = json.dumps({"action": "stop", "message_id": reply.pk})
    retry = json.dumps({"action": "retry", "message_id": reply.pk})
    await communicator.send_to(text_data=stop)
    await receive_until(communicator, r"status-cancelled")
    await communicator.send_to(text_data=retry)
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    await communicator.send_to(text_data=stop)
    await receive_until(communicator, r"status-cancelled")
    await communicator.send_to(text_data=retry)
    frames = await receive_until(communicator, r"Try again in \d+ seconds")
    assert "faster than allowed" in frames
    assert (await Message.objects.aget(pk=reply.pk)).status == Message.Status.CANCELLED
    await communicator.disconnect()


async def test_sockets_per_user_are_limited(owner, settings) -> None:
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    conversation = await Conversation.objects.acreate(owner=owner)
    first, connected_first, _ = await connect(owner, conversation)
    second, connected_second, _ = await connect(owner, conversation)
    _, connected_third, code = await connect(owner, conversation)
    assert connected_first
    assert connected_second
    assert not connected_third
    assert code == 4429
    someone_else = await database_sync_to_async(UserFactory)()
    theirs = await Conversation.objects.acreate(owner=someone_else)
    other, connected_other, _ = await connect(someone_else, theirs)
    assert connected_other, "the limit is per user"
    await first.disconnect()
    fourth, connected_fourth, _ = await connect(owner, conversation)
    assert connected_fourth, "a closed socket gives its slot back"
    for communicator in (second, other, fourth):
        await communicator.disconnect()
    assert owner.pk not in socket_slots._local, "every slot given back"


async def test_the_turn_checks_the_session_in_one_query(owner) -> None:
    """The per-turn check is a single round trip whatever the session's state."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.sockets import session_is_current

    session_key = await database_sync_to_async(session_for)(owner)

    def check(key: str | None) -> tuple[bool, int]:
        with CaptureQueriesContext(connection) as queries:
            current = session_is_current(user_id=owner.pk, session_key=key)
        return current, len(queries)

    assert await database_sync_to_async(check)(session_key) == (True, 1)
    assert await database_sync_to_async(check)("not-a-session") == (False, 1)


@pytest.mark.skipif(not settings.REDIS_URL, reason="sockets of other processes meet in Redis")
async def test_sockets_held_by_other_processes_count_too(owner, settings) -> None:
    import time

    from redis.asyncio import Redis

    settings.CHAT_MAX_SOCKETS_PER_USER = 1
    conversation = await Conversation.objects.acreate(owner=owner)
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        await redis.zadd(socket_slots._key(owner.pk), {"another-process!x": time.time() + 60})
        _, connected, code = await connect(owner, conversation)
        assert not connected
        assert code == 4429
        await redis.zadd(socket_slots._key(owner.pk), {"another-process!x": time.time() - 1})
        communicator, connected, _ = await connect(owner, conversation)
        assert connected, "a lapsed entry (a process that died) holds no slot"
        await communicator.disconnect()
    finally:
        await redis.aclose()
