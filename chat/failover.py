"""Failover between the deployments of one group, with each member's health kept in the cache.

The cache is Redis in production, so every process sees the same health. While the cache
cannot be reached, every member counts as healthy and nothing is recorded: a turn is never
refused, nor failed, because Redis is down. A member that fails
``FAILOVER_FAILURE_THRESHOLD`` times within ``FAILOVER_WINDOW_SECONDS`` is skipped for
``FAILOVER_COOLDOWN_SECONDS``; a success clears its count and any cool-down.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from chat.models import Deployment

logger = logging.getLogger(__name__)

# How long the last failure and success stay known to the admin.
_MEMORY = 24 * 60 * 60


def _without_cache[**P, R](default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Health bookkeeping that gives ``default`` instead of failing while the cache is down."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except Exception:
                logger.warning("failover: the cache is unreachable; %s skipped", function.__name__)
                return default

        return guarded

    return decorate


def _key(kind: str, deployment: Deployment) -> str:
    return f"chat:failover:{kind}:{deployment.pk}"


def failover_candidates(deployment: Deployment, *, user_id: int) -> list[Deployment]:
    """The deployments to try for a turn of user ``user_id``, in order: ``deployment``, then
    the enabled members of its failover group serving the same model that the user may use,
    by priority; members cooling down are left out.

    When every one of them is cooling down, ``deployment`` alone is returned: a turn is always
    tried somewhere. One query (none without a group) and one cache round trip.
    """
    members = [deployment]
    if deployment.failover_group:
        members += list(
            Deployment.objects.usable_by_user_id(user_id)
            .filter(failover_group=deployment.failover_group, model=deployment.model)
            .exclude(pk=deployment.pk)
            .order_by("priority", "name", "pk")
        )
    try:
        cooling = cache.get_many([_key("cooldown", member) for member in members])
    except Exception:
        logger.warning("failover: the cache is unreachable; every member counts as healthy")
        cooling = {}
    healthy = [member for member in members if _key("cooldown", member) not in cooling]
    return healthy or [deployment]


@_without_cache(False)
def record_failure(deployment: Deployment, *, reason: str = "") -> bool:
    """Count a failure (429, 5xx, timeout before the first token); True if it starts a cool-down.

    ``reason`` (an error kind, say) is kept for the admin's health column.
    """
    now = time.time()
    window = settings.FAILOVER_WINDOW_SECONDS
    failures_key = _key("failures", deployment)
    # The count lives for one window from the first failure in it.
    cache.add(failures_key, 0, timeout=window)
    try:
        failures = cache.incr(failures_key)
    except ValueError:  # the count expired between add and incr
        cache.set(failures_key, 1, timeout=window)
        failures = 1
    cache.set(_key("last_failure", deployment), (now, reason), timeout=_MEMORY)
    if failures < settings.FAILOVER_FAILURE_THRESHOLD:
        return False
    cooldown = settings.FAILOVER_COOLDOWN_SECONDS
    cache.set(_key("cooldown", deployment), now + cooldown, timeout=cooldown)
    cache.delete(failures_key)
    return True


@_without_cache(None)
def record_success(deployment: Deployment) -> None:
    """A turn got its first token from ``deployment``: it is healthy again."""
    cache.delete_many([_key("failures", deployment), _key("cooldown", deployment)])
    cache.set(_key("last_success", deployment), time.time(), timeout=_MEMORY)


_UNKNOWN_HEALTH: dict[str, Any] = {
    "recent_failures": 0,
    "cooling_down_until": None,
    "last_failure_at": None,
    "last_failure_reason": "",
    "last_success_at": None,
}


@_without_cache(_UNKNOWN_HEALTH)
def health(deployment: Deployment) -> dict[str, Any]:
    """The member's recent health, for the admin: one cache round trip.

    ``recent_failures`` (within the current window), ``cooling_down_until`` (epoch seconds or
    None), ``last_failure_at`` / ``last_success_at`` (epoch seconds or None) and
    ``last_failure_reason``.
    """
    keys = {
        kind: _key(kind, deployment)
        for kind in ("failures", "cooldown", "last_failure", "last_success")
    }
    found = cache.get_many(list(keys.values()))
    last_failure_at, last_failure_reason = found.get(keys["last_failure"], (None, ""))
    return {
        "recent_failures": int(found.get(keys["failures"], 0)),
        "cooling_down_until": found.get(keys["cooldown"]),
        "last_failure_at": last_failure_at,
        "last_failure_reason": last_failure_reason,
        "last_success_at": found.get(keys["last_success"]),
    }
