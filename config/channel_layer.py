"""The Redis channel layer, made to degrade instead of break when Redis goes away.

The layer carries only what crosses processes (stop, progress for tabs elsewhere, session
ends): a reply streams to its own sockets without it. So while Redis is down, sends and group
changes are logged and dropped, and a socket's receive loop waits and tries again rather than
raising (which would drop the socket). Redis keeps nothing on disk here, so when it comes back
this process joins its groups again; what tabs missed meanwhile they read from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisError, OSError)
_RETRY_MAX = 5.0


class ResilientRedisChannelLayer(RedisChannelLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memberships: defaultdict[str, set[str]] = defaultdict(set)
        self._rejoin = False

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await super().send(channel, message)
        except UNREACHABLE:
            logger.warning("channel layer: Redis unreachable; %s dropped", message.get("type"))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        try:
            await super().group_send(group, message)
        except UNREACHABLE:
            logger.warning("channel layer: Redis unreachable; %s dropped", message.get("type"))

    async def group_add(self, group: str, channel: str) -> None:
        self._memberships[group].add(channel)
        try:
            await super().group_add(group, channel)
        except UNREACHABLE:
            self._rejoin = True
            logger.warning("channel layer: Redis unreachable; will join %s when it is back", group)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._memberships.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._memberships[group]
        try:
            await super().group_discard(group, channel)
        except UNREACHABLE:
            logger.warning("channel layer: Redis unreachable; %s left locally only", group)

    async def receive(self, channel: str) -> dict[str, Any]:
        delay = 0.1
        while True:
            try:
                if self._rejoin:
                    await self._join_again()
                message: dict[str, Any] = await super().receive(channel)
                return message
            except UNREACHABLE:
                self._rejoin = True
                logger.warning("channel layer: Redis unreachable; receiving again in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    async def _join_again(self) -> None:
        for group, channels in list(self._memberships.items()):
            for channel in list(channels):
                await super().group_add(group, channel)
        self._rejoin = False
        logger.info("channel layer: Redis is back; groups joined again")
