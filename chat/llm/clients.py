"""The SDK clients: one shared HTTP connection pool per event loop, handed to the SDK
(``http_client=``), and a light SDK client per deployment version on top of it.

An SDK client holds only the base URL, the key (or the Entra ID token provider) and the
timeouts; the connections belong to the loop's pool, which goes out only through
:mod:`chat.egress`. A deployment that an administrator changes gets a new SDK client at once,
and nothing in flight is closed under a request: the pool closes at shutdown only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx2
import openai
from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
from django.conf import settings

from chat import egress
from chat.llm.errors import error_of
from chat.llm.events import ErrorKind, LLMError, LLMRequestError
from chat.validators import key_variable_problem

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from chat.models import Deployment


def make_credential(deployment: Deployment) -> AsyncTokenCredential:
    """The Entra ID credential for a deployment.

    Module level so that tests can replace it: Entra ID's token service is the one part that
    cannot run here; every request after it is real.
    """
    return DefaultAzureCredential(
        managed_identity_client_id=deployment.managed_identity_client_id or None
    )


@dataclass(eq=False)
class _Pool:
    """What one event loop shares: its connections, its SDK clients and its credentials."""

    http: httpx2.AsyncClient
    sdks: dict[int, tuple[datetime | None, openai.AsyncOpenAI]] = field(default_factory=dict)
    # (deployment, managed identity) -> credential; a credential keeps its token cached.
    credentials: dict[tuple[int | None, str], AsyncTokenCredential] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.http.aclose()
        for credential in self.credentials.values():
            await credential.close()


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    for gone in [other for other in _pools if other.is_closed()]:
        del _pools[gone]  # its connections died with it; nothing can be awaited there
    pool = _pools.get(loop)
    if pool is None:
        pool = _Pool(
            openai.DefaultAsyncHttpxClient(
                transport=egress.GuardedTransport(limits=openai.DEFAULT_CONNECTION_LIMITS),
                # Azure does not redirect API calls; following one would take the key elsewhere.
                follow_redirects=False,
            )
        )
        _pools[loop] = pool
    return pool


def _api_key(deployment: Deployment) -> str:
    name = deployment.api_key_env
    # Checked again where the value is read: a row saved before the rule, or changed around
    # the form, must not send one of the app's own secrets to the endpoint as a bearer token.
    if name and (problem := key_variable_problem(name)):
        why, detail = "The app may not use this deployment's key variable.", problem
    elif not (api_key := os.environ.get(name, "") if name else ""):
        why = "The app has no API key for this deployment (its environment variable is not set)."
        detail = f"environment variable {name or '(none named)'} is not set"
    else:
        return api_key
    message = f"{why} Please contact an administrator."
    raise LLMRequestError(LLMError(ErrorKind.AUTH_FAILED, message, detail=detail))


def _credential(pool: _Pool, deployment: Deployment) -> AsyncTokenCredential:
    key = (deployment.pk, deployment.managed_identity_client_id)
    credential = pool.credentials.get(key)
    if credential is None:
        credential = pool.credentials[key] = make_credential(deployment)
    return credential


def _build(pool: _Pool, deployment: Deployment) -> openai.AsyncOpenAI:
    from chat.models import Deployment

    refusal = egress.endpoint_refusal(deployment.endpoint)
    if refusal is not None:
        raise LLMRequestError(error_of(ErrorKind.ENDPOINT_REFUSED, refusal))
    api_key: str | Callable[[], Awaitable[str]]
    if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
        api_key = get_bearer_token_provider(
            _credential(pool, deployment), settings.AZURE_OPENAI_TOKEN_SCOPE
        )
    else:
        api_key = _api_key(deployment)
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=deployment.base_url,
        http_client=pool.http,
        max_retries=0,  # retries happen in stream_reply, and only before the first token
        timeout=openai.Timeout(
            connect=settings.LLM_CONNECT_TIMEOUT,
            read=settings.LLM_READ_TIMEOUT,
            write=settings.LLM_CONNECT_TIMEOUT,
            pool=settings.LLM_CONNECT_TIMEOUT,
        ),
    )


def _is_newer(version: datetime | None, than: datetime | None) -> bool:
    return version is not None and (than is None or version > than)


@contextlib.asynccontextmanager
async def sdk_client(deployment: Deployment) -> AsyncIterator[openai.AsyncOpenAI]:
    """The deployment's SDK client on this loop's pool. A stale copy of a deployment (an older
    ``updated_at``) keeps using the newer client; an unsaved one (a connection test from the
    add form) gets its own, and its credential is closed after."""
    pool = _pool()
    if deployment.pk is None:
        credentials_before = set(pool.credentials)
        try:
            yield _build(pool, deployment)
        finally:
            for key in set(pool.credentials) - credentials_before:
                await pool.credentials.pop(key).close()
        return
    cached = pool.sdks.get(deployment.pk)
    if cached is None or _is_newer(deployment.updated_at, cached[0]):
        cached = pool.sdks[deployment.pk] = (deployment.updated_at, _build(pool, deployment))
    yield cached[1]


def sdk_cached(deployment_pk: int) -> openai.AsyncOpenAI | None:
    """The SDK client this loop holds for a deployment, if any."""
    pool = _pools.get(asyncio.get_running_loop())
    cached = pool.sdks.get(deployment_pk) if pool is not None else None
    return cached[1] if cached is not None else None


async def aclose_clients() -> None:
    """Close this loop's connections and credentials (at shutdown)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()
