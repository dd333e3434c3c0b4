"""Liveness and readiness probes for load balancers and orchestrators.

``/readyz`` answers within about READYZ_CHECK_TIMEOUT whatever is down: each check runs at once
with its own time limit, and a check that hangs counts as failed. Without the database nothing
works (503, "unavailable"); without Redis (channel layer or cache) pages and replies still
work in each process, so the process stays in rotation (200, "degraded").
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@never_cache
@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ready() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return bool(cursor.fetchone() == (1,))
    finally:
        # This runs in a thread of its own: give its connection back to the pool.
        connection.close()


def _cache_ready() -> bool:
    cache.set("readyz", "ok", timeout=10)
    return bool(cache.get("readyz") == "ok")


async def _channel_layer_ready() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    return bool(message.get("type") == "readyz.ping")


async def _check(name: str, probe: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await asyncio.wait_for(probe(), settings.READYZ_CHECK_TIMEOUT)
    except TimeoutError:
        logger.warning("readiness: %s did not answer in %gs", name, settings.READYZ_CHECK_TIMEOUT)
    except Exception:
        logger.exception("readiness: %s unreachable", name)
    return False


@never_cache
@login_not_required
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    # Not thread-sensitive: a database that hangs must not hold the thread every other
    # request's ORM calls run in. A timed-out check finishes on its own (connect_timeout).
    database, channel_layer, cache_ok = await asyncio.gather(
        _check("database", sync_to_async(_database_ready, thread_sensitive=False)),
        _check("channel layer", _channel_layer_ready),
        _check("cache", sync_to_async(_cache_ready, thread_sensitive=False)),
    )
    checks = {"database": database, "channel_layer": channel_layer, "cache": cache_ok}
    if not database:
        status = "unavailable"
    elif all(checks.values()):
        status = "ok"
    else:
        status = "degraded"
    return JsonResponse(
        {"status": status, "checks": checks}, status=503 if status == "unavailable" else 200
    )
