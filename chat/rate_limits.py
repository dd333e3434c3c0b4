"""The per-user turn rate limit: ``CHAT_RATE_LIMIT`` turns per ``CHAT_RATE_WINDOW`` seconds.

Counted in the cache (Redis when REDIS_URL is set), so every process shares the count. When the
cache cannot be reached the count falls back to this process's own: a person is never refused
a turn, nor shown an error, because Redis is down, and the limit still holds per process.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from accounts.models import User

logger = logging.getLogger(__name__)

# (user, window) -> turns counted here while the cache was unreachable.
_local_counts: dict[tuple[int, int], int] = {}


def _window(now: float) -> int:
    return int(now // settings.CHAT_RATE_WINDOW)


def _key(user: User, window: int) -> str:
    return f"chat:rate:{user.pk}:{window}"


def _count_locally(user: User, window: int, *, add: int) -> int:
    for stale in [key for key in _local_counts if key[1] < window]:
        del _local_counts[stale]
    count = _local_counts.get((user.pk, window), 0) + add
    _local_counts[(user.pk, window)] = count
    return count


def _count(user: User, window: int, *, add: int) -> int:
    key = _key(user, window)
    timeout = settings.CHAT_RATE_WINDOW + 5
    try:
        if not add:
            return int(cache.get(key, 0))
        cache.add(key, 0, timeout=timeout)
        try:
            return int(cache.incr(key, add))
        except ValueError:  # expired between add and incr
            cache.set(key, add, timeout=timeout)
            return add
    except Exception:
        logger.warning("rate limit: the cache is unreachable; counting in this process")
        return _count_locally(user, window, add=add)


def rate_limit_reached(*, user: User) -> bool:
    """Whether the user's next turn would be refused; counts nothing."""
    return _count(user, _window(time.time()), add=0) >= settings.CHAT_RATE_LIMIT


def rate_limit_hit(*, user: User) -> int | None:
    """Count a turn against the user's rate limit; returns the seconds to wait if over it."""
    now = time.time()
    window = _window(now)
    if _count(user, window, add=1) > settings.CHAT_RATE_LIMIT:
        return max(1, math.ceil((window + 1) * settings.CHAT_RATE_WINDOW - now))
    return None
