"""The conversation websocket, against the running simulator over HTTP."""

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import replies
from chat.models import Conversation, Message, StoredResponse
from config.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


async def connect(
    user: Any, conversation: Conversation, *, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[WebsocketCommunicator, bool, Any]:
    from channels.auth import AuthMiddlewareStack  # noqa: F401  (documented below)

    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.pk}/",
        headers=[ORIGIN] if headers is None else headers,
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def receive_until(
    communicator: WebsocketCommunicator, pattern: str, *, timeout: float = 5
) -> str:
    """Collect frames until one matches ``pattern``; returns everything received."""
    received: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame = await communicator.receive_from(timeout=max(remaining, 0.01))
        received.append(frame)
        if re.search(pattern, frame):
            return "".join(received)


async def wait_for_reply(conversation: Conversation) -> Message:
    for _ in range(200):
        reply = await Message.objects.filter(
            conversation=conversation, role=Message.Role.ASSISTANT
        ).alast()
        if reply is not None and not reply.in_flight:
            return reply
        await asyncio.sleep(0.025)
    raise AssertionError("the reply never finished")


def send_payload(text: str, **extra: str) -> str:
    return json.dumps(
        {"text": text, "client_id": str(uuid.uuid4()), "HEADERS": {"HX-Request": "true"}, **extra}
    )


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def conversation(owner, sim_deployment):
    return Conversation.objects.create(owner=owner, deployment=sim_deployment)


async def test_a_whole_turn_streams_and_is_saved(owner, conversation, clean_simulator) -> None:
    communicator, connected, _ = await connect(owner, conversation)
    assert connected
    await communicator.send_to(text_data=send_payload("Hello there"))
    frames = await receive_until(communicator, r'class="message message-assistant status-completed')
    assert "Hello there" in frames
    assert 'hx-swap-oob="beforeend"' in frames, "deltas streamed as out-of-band appends"
    reply = await wait_for_reply(conversation)
    assert reply.status == Message.Status.COMPLETED
    assert reply.text and reply.html.startswith("<")
    assert reply.response_id.startswith("resp_")
    assert reply.output_tokens and reply.output_tokens > 0
    assert await StoredResponse.objects.filter(response_id=reply.response_id).aexists()
    await communicator.disconnect()
