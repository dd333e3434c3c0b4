"""A tab following a reply another process writes (the conversation socket's part of it).

Its progress comes over the channel layer; the database is asked now and then, so a finish the
layer lost still shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from chat import replies, tab_views
from chat.models import Conversation


class RemoteFollowing:
    """Mixed into the conversation consumer, which sends the fragments."""

    conversation: Conversation
    following: asyncio.Task[None] | None = None
    remote_progress_at = 0.0

    send_fragment: Callable[[str], Awaitable[None]]

    async def _follow_remotely(self, message_id: int) -> None:
        """Follow a reply another process writes, until it finishes."""
        self._stop_following()
        await replies.reply_watch_remotely(
            conversation_id=self.conversation.pk, message_id=message_id
        )
        self.following = asyncio.ensure_future(self._poll_until_finished(message_id))

    async def _poll_until_finished(self, message_id: int) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_REMOTE_POLL_SECONDS)
            with contextlib.suppress(DatabaseError):
                final = await database_sync_to_async(tab_views.finished_message)(
                    message_id, self.conversation.pk
                )
                if final is not None:
                    await self.send_fragment(final)
                    return
            if time.monotonic() - self.remote_progress_at > settings.CHAT_REMOTE_POLL_SECONDS:
                # No progress: the request may have reached the other process before its reply
                # listened, or been lost with Redis. Asking again costs one small event.
                await replies.reply_watch_remotely(
                    conversation_id=self.conversation.pk, message_id=message_id
                )

    def _stop_following(self) -> None:
        if self.following is not None:
            self.following.cancel()
            self.following = None

    # Events from the process that writes the reply

    async def reply_progress(self, event: dict[str, Any]) -> None:
        if event["origin"] == replies.PROCESS_ID:
            return
        self.remote_progress_at = time.monotonic()
        await self.send_fragment(event["fragment"])

    async def reply_finished(self, event: dict[str, Any]) -> None:
        if event["origin"] == replies.PROCESS_ID:
            return
        self._stop_following()
        final = await database_sync_to_async(tab_views.finished_message)(
            event["message_id"], self.conversation.pk
        )
        if final:
            await self.send_fragment(final)
