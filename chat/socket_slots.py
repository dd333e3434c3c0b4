"""At most ``CHAT_MAX_SOCKETS_PER_USER`` open websockets per user, across every process.

With Redis each user has a sorted set of their sockets, scored by when the entry lapses: a
process that dies leaves entries that lapse on their own within ``SLOT_TTL`` seconds, and each
live process renews its own sockets' entries in one pipeline every ``SLOT_TTL / 3``. Without
Redis there is one process (a system check refuses more), and its own count is the whole count.
When Redis cannot be reached the process falls back to counting its own sockets: a socket is
never refused because the cache is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SLOT_TTL = 120.0
_REDIS_TIMEOUT = 0.5

_local: dict[int, set[str]] = {}
_clients: dict[asyncio.AbstractEventLoop, Redis] = {}
_renewer: asyncio.Task[None] | None = None


def _key(user_id: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:chat:sockets:{user_id}"


def _client() -> Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        # A small blocking pool: a burst of connects waits for a connection instead of
        # opening one each and keeping them all afterwards.
        pool = BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=10,
            timeout=_REDIS_TIMEOUT,
            socket_timeout=_REDIS_TIMEOUT,
            socket_connect_timeout=_REDIS_TIMEOUT,
        )
        client = _clients[loop] = Redis(connection_pool=pool)
    return client


def _local_count(user_id: int) -> int:
    return len(_local.get(user_id, ()))


async def _shared_count(client: Redis, user_id: int, channel: str) -> int:
    now = time.time()
    key = _key(user_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {channel: now + SLOT_TTL})
        pipe.zcard(key)
        pipe.expire(key, int(SLOT_TTL) + 1)
        _, _, count, _ = await pipe.execute()
    return int(count)


async def slot_acquire(*, user_id: int, channel: str) -> bool:
    """Take a slot for this socket; False when the user already has the most allowed."""
    limit = settings.CHAT_MAX_SOCKETS_PER_USER
    client = _client()
    count = _local_count(user_id) + 1
    if client is not None:
        try:
            count = await _shared_count(client, user_id, channel)
        except (RedisError, OSError, TimeoutError):
            logger.warning("socket slots: Redis unreachable, counting this process's sockets")
        else:
            if count > limit:
                await _shared_release(client, user_id, channel)
            _ensure_renewer()
    if count > limit:
        return False
    _local.setdefault(user_id, set()).add(channel)
    return True


async def _shared_release(client: Redis, user_id: int, channel: str) -> None:
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        await client.zrem(_key(user_id), channel)


async def slot_release(*, user_id: int, channel: str) -> None:
    sockets = _local.get(user_id)
    if sockets is None or channel not in sockets:
        return
    sockets.discard(channel)
    if not sockets:
        del _local[user_id]
    client = _client()
    if client is not None:
        await _shared_release(client, user_id, channel)


def _ensure_renewer() -> None:
    global _renewer
    if _renewer is None or _renewer.done():
        _renewer = asyncio.get_running_loop().create_task(_renew(), name="socket-slots")


async def _renew() -> None:
    """Keep this process's sockets counted while they are open."""
    while _local:
        await asyncio.sleep(SLOT_TTL / 3)
        client = _client()
        if client is None:
            return
        lapse = time.time() + SLOT_TTL
        try:
            async with client.pipeline(transaction=False) as pipe:
                for user_id, channels in list(_local.items()):
                    pipe.zadd(_key(user_id), dict.fromkeys(channels, lapse))
                    pipe.expire(_key(user_id), int(SLOT_TTL) + 1)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            logger.warning("socket slots: could not renew this process's sockets")
