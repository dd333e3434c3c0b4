import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.lifespan import lifespan
from chat.models import Conversation, Message
from config.asgi import application
from tests.factories import session_for, socket_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def test_shutdown_saves_replies_in_flight(user, make_sim_deployment, clean_simulator) -> None:
    deployment = await database_sync_to_async(make_sim_deployment)(options="tps=40,words=400")
    conversation = await Conversation.objects.acreate(owner=user, deployment=deployment)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.pk}/",
        headers=socket_headers(await database_sync_to_async(session_for)(user)),
    )
    await communicator.connect()
    await communicator.send_to(
        text_data=json.dumps({"text": "A long one", "client_id": str(uuid.uuid4())})
    )
    while 'beforeend">' not in await communicator.receive_from(timeout=5):
        pass

    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[dict[str, str]] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await messages.put({"type": "lifespan.startup"})
    await messages.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan({"type": "lifespan"}, messages.get, send), timeout=10)

    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == Message.Status.INCOMPLETE
    assert reply.text, "what was streamed is kept"
    assert "server stopped" in reply.error
    await communicator.disconnect()


async def test_shutdown_settles_a_reply_that_never_started(user, sim_deployment) -> None:
    from chat import replies, services

    conversation = await Conversation.objects.acreate(owner=user, deployment=sim_deployment)
    turn = await database_sync_to_async(services.turn_start)(
        user=user,
        conversation_id=conversation.pk,
        text="Hello",
        client_id=None,
        session_key=await database_sync_to_async(session_for)(user),
    )
    replies.reply_start(turn)
    await replies.replies_shutdown()

    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == Message.Status.FAILED
    assert "server stopped" in reply.error
