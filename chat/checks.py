"""System checks: configurations the app refuses to run on."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

_PROCESSES_WITHOUT_REDIS = (
    "WEB_CONCURRENCY={processes} server processes without REDIS_URL: each process would keep "
    "its own channel layer and cache, so a tab served by one process would never hear about "
    "a reply streaming in another, and rate limits would count per process."
)
_HINT = "Set REDIS_URL (e.g. redis://redis:6379/0), or serve with one process (WEB_CONCURRENCY=1)."


def _processes_share_nothing() -> bool:
    return settings.WEB_CONCURRENCY > 1 and not settings.REDIS_URL


def _problem(*, error: bool) -> list[checks.CheckMessage]:
    message = _PROCESSES_WITHOUT_REDIS.format(processes=settings.WEB_CONCURRENCY)
    if error:
        return [checks.Error(message, hint=_HINT, id="chat.E001")]
    return [checks.Warning(message, hint=_HINT, id="chat.W001")]


@checks.register(checks.Tags.compatibility)
def processes_share_redis(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> Sequence[checks.CheckMessage]:
    """Several processes without Redis: an error in production, a warning in development."""
    if not _processes_share_nothing():
        return []
    return _problem(error=not settings.DEBUG)


@checks.register(checks.Tags.compatibility, deploy=True)
def processes_share_redis_deploy(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> Sequence[checks.CheckMessage]:
    """``check --deploy`` refuses it in development settings too (production already does)."""
    if not _processes_share_nothing() or not settings.DEBUG:
        return []
    return _problem(error=True)
