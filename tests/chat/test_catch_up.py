"""A tab that was away catches up: what it missed is appended, a reply in flight is followed,
and one that finished meanwhile is shown as it ended."""

import json

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.chat.sockets import connect, conversation_on, receive_until, send_payload, wait_for_reply
from tests.factories import UserFactory, session_for, socket_headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner(db):
    return UserFactory()


async def connect_after(owner, conversation, after: int):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    session_key = await database_sync_to_async(session_for)(owner)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.pk}/?after={after}",
        headers=socket_headers(session_key),
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_a_tab_that_missed_a_turn_started_elsewhere_is_shown_it(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=400,words=8")
    first, _, _ = await connect(owner, conversation)
    await first.send_to(text_data=send_payload("Seen by both"))
    await receive_until(first, r"message-assistant status-completed")
    seen = await wait_for_reply(conversation)
    await first.send_to(text_data=send_payload("Sent while the laptop slept"))
    await receive_until(first, r"message-assistant status-completed")
    await first.disconnect()

    woken = await connect_after(owner, conversation, after=seen.pk)
    frames = await receive_until(woken, r'id="reply-controls"|reply-controls')
    missed = [m async for m in Message.objects.filter(conversation=conversation, pk__gt=seen.pk)]
    assert len(missed) == 2
    assert 'hx-swap-oob="beforeend:#messages"' in frames, "appended after what the tab shows"
    for message in missed:
        assert f'id="message-{message.pk}"' in frames
    assert f'id="message-{seen.pk}"' in frames, "the last one it showed, as it stands now"
    assert "Sent while the laptop slept" in frames
    await woken.disconnect()


async def test_a_reconnecting_tab_follows_the_reply_still_streaming(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=60,words=200")
    first, _, _ = await connect(owner, conversation)
    await first.send_to(text_data=send_payload("A long one"))
    await receive_until(first, r'hx-swap-oob="beforeend">[^<]')
    question = await Message.objects.filter(conversation=conversation, role="user").alast()
    await first.disconnect()

    back = await connect_after(owner, conversation, after=question.pk - 1)
    frames = await receive_until(back, r"message-assistant status-completed", within=10)
    assert 'hx-swap-oob="outerHTML">' in frames, "the text so far, then the rest"
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.COMPLETED
    await back.disconnect()


async def test_a_double_click_renders_the_turn_once(owner, make_sim_deployment, clean_simulator):
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=200,words=20")
    communicator, _, _ = await connect(owner, conversation)
    payload = send_payload("Clicked twice")
    await communicator.send_to(text_data=payload)
    await communicator.send_to(text_data=payload)
    frames = await receive_until(communicator, r"message-assistant status-completed")
    question = await Message.objects.aget(conversation=conversation, role="user")
    appended = frames.count('hx-swap-oob="beforeend:#messages"')
    assert appended == 1, "appended once; the second click only replaces it"
    assert frames.count(f'<article id="message-{question.pk}"') == 2
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    await communicator.disconnect()


async def test_stop_pressed_again_while_saving_changes_nothing(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=40,words=400")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Stop me"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    reply = await Message.objects.filter(conversation=conversation, role="assistant").alast()
    stop = json.dumps({"action": "stop", "message_id": reply.pk})
    for _ in range(5):
        await communicator.send_to(text_data=stop)
    frames = await receive_until(communicator, r"status-cancelled")
    assert 'id="stop-form"' not in frames.rsplit("status-cancelled", 1)[1], "no Stop left"
    saved = await wait_for_reply(conversation)
    assert saved.status == Message.Status.CANCELLED
    assert saved.text
    await communicator.disconnect()
