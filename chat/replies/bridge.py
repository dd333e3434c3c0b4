"""The bridge: one reply on the channel layer, for tabs served by other processes.

Those tabs reach the reply through its conversation's control group, to stop it or to say
they watch it (only then is progress published, coalesced, to the conversation's tabs group).
Deltas never travel through the layer. The layer is Redis in production, and Redis may go
away: the layer (``config.channel_layer``) then logs and drops what is sent and waits to
receive, the reply goes on without it, and tabs elsewhere catch up from the database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

# Identifies this process in channel-layer events, so it can ignore its own.
PROCESS_ID = uuid.uuid4().hex


def tabs_group(conversation_id: int) -> str:
    return f"chat.conversation.{conversation_id}"


def control_group(conversation_id: int) -> str:
    return f"chat.reply-control.{conversation_id}"


async def layer_send(group: str, event: dict[str, Any]) -> None:
    """Send to a group; while Redis is down the layer logs and drops it
    (``config.channel_layer``)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, event)


class Bridge:
    def __init__(
        self,
        *,
        conversation_id: int,
        message_id: int,
        stop: Callable[[], None],
        shown: Callable[[], str],
    ) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id
        self._stop = stop
        self._shown = shown
        self._remote_watchers = False
        self._last_progress = 0.0
        self._publishing: set[asyncio.Task[None]] = set()

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "message_id": self.message_id, "origin": PROCESS_ID, **fields}

    def _progress_event(self) -> dict[str, Any]:
        # The rendered, sanitized HTML the relay shows: tabs elsewhere need not render again.
        return self._event("reply.progress", fragment=self._shown())

    def _spawn_publish(self, event: dict[str, Any]) -> None:
        task = asyncio.ensure_future(layer_send(tabs_group(self.conversation_id), event))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def progress(self) -> None:
        """After a flush: publish the reply so far, at most every CHAT_REMOTE_FLUSH_INTERVAL."""
        if not self._remote_watchers:
            return
        now = time.monotonic()
        if now - self._last_progress >= settings.CHAT_REMOTE_FLUSH_INTERVAL:
            self._last_progress = now
            self._spawn_publish(self._progress_event())

    async def finished(self) -> None:
        for task in list(self._publishing):
            task.cancel()
        await layer_send(tabs_group(self.conversation_id), self._event("reply.finished"))

    async def listen(self) -> None:
        """Until cancelled: act on stop and watch requests from other processes. The layer
        itself waits out a Redis outage and joins the group again when Redis is back."""
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        await layer.group_add(control_group(self.conversation_id), channel)
        try:
            while True:
                self._handle(await layer.receive(channel))
        finally:
            await layer.group_discard(control_group(self.conversation_id), channel)

    def _handle(self, event: dict[str, Any]) -> None:
        if event.get("message_id") != self.message_id:
            return
        if event.get("type") == "reply.stop":
            self._stop()
        elif event.get("type") == "reply.watch":
            self._remote_watchers = True
            self._last_progress = time.monotonic()
            self._spawn_publish(self._progress_event())
