"""Liveness and readiness probes for load balancers and orchestrators."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0


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
    except Exception:
        logger.exception("readiness: database unreachable")
        return False


async def _channel_layer_ready() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        channel = await layer.new_channel("readyz.")
        await asyncio.wait_for(layer.send(channel, {"type": "readyz.ping"}), READY_TIMEOUT_SECONDS)
        message = await asyncio.wait_for(layer.receive(channel), READY_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("readiness: channel layer unreachable")
        return False
    return bool(message.get("type") == "readyz.ping")


@never_cache
@login_not_required
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": await sync_to_async(_database_ready)(),
        "channel_layer": await _channel_layer_ready(),
    }
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
