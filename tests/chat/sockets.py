"""Helpers for websocket tests: a browser's socket with a real session, and its frames."""

import asyncio
import json
import re
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.models import Conversation, Message
from config.asgi import application
from tests.factories import session_for, socket_headers


async def connect(
    user: Any,
    conversation: Conversation,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    session_key: str | None = None,
) -> tuple[WebsocketCommunicator, bool, Any]:
    """A socket opened by ``user``'s browser: a real session cookie, from the site's origin."""
    if headers is None:
        session_key = session_key or await database_sync_to_async(session_for)(user)
        headers = socket_headers(session_key)
    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{conversation.pk}/", headers=headers
    )
    connected, code = await communicator.connect()
    return communicator, connected, code


async def receive_until(
    communicator: WebsocketCommunicator, pattern: str, *, within: float = 15
) -> str:
    """Collect frames until one matches ``pattern``; returns everything received."""
    received: list[str] = []
    deadline = asyncio.get_running_loop().time() + within
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame = await communicator.receive_from(timeout=max(remaining, 0.01))
        received.append(frame)
        if re.search(pattern, frame):
            return "".join(received)


async def wait_for_reply(conversation: Conversation, *, within: float = 15) -> Message:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
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


async def conversation_on(owner: Any, make_sim_deployment: Any, **fields: Any) -> Conversation:
    """A conversation of ``owner`` on a new simulator deployment with these fields."""
    deployment = await database_sync_to_async(make_sim_deployment)(**fields)
    return await Conversation.objects.acreate(owner=owner, deployment=deployment)


def model_requests(simulator: Any) -> list[dict[str, Any]]:
    """The bodies of the requests for a response the simulator received, oldest first."""
    return [r["json"] for r in simulator.requests(op="create")]


async def turn_and_wait(
    communicator: WebsocketCommunicator, conversation: Conversation, text: str, **extra: str
) -> tuple[str, Message]:
    """Send a message; the frames until its reply completed, and the saved reply."""
    await communicator.send_to(text_data=send_payload(text, **extra))
    frames = await receive_until(communicator, r"message-assistant status-completed")
    return frames, await wait_for_reply(conversation)
