"""The model gateway: the only module that imports ``openai`` or ``azure.identity``.

It turns the SDK's events into the project's own small event types so the rest of the app
never sees SDK objects, and classifies every failure by Azure's error code.

Streams are read from the SDK's raw streaming response and only the lines that matter are
parsed: building the SDK's event objects for every delta costs about twice as much CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
from django.conf import settings

from chat import egress
from chat.durations import seconds_text
from chat.llm_types import (
    Completed as Completed,
    ConnectionReport as ConnectionReport,
    ErrorKind as ErrorKind,
    Failed as Failed,
    Incomplete as Incomplete,
    LLMError as LLMError,
    LLMRequestError as LLMRequestError,
    ReasoningDelta as ReasoningDelta,
    RemoteResponse as RemoteResponse,
    Started as Started,
    StreamEvent as StreamEvent,
    TextDelta as TextDelta,
    Usage as Usage,
)
from chat.redaction import redact
from chat.validators import key_variable_problem

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from chat.models import Deployment

logger = logging.getLogger(__name__)


# Azure refuses smaller limits on the Responses API.
MIN_OUTPUT_TOKENS = 16

# After the terminal event the rest of the body (normally nothing) is read so that the
# connection goes back to the pool instead of being torn down; a server that keeps the
# stream open longer than this loses its connection instead.
_DRAIN_TIMEOUT = 2.0
_DETAIL_LIMIT = 500

_TEXT_DELTA = "response.output_text.delta"
_TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)
_REASONING_DELTAS = frozenset(
    {
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)
_RETRY_HINT = re.compile(r"(?:retry after|try again in)\s+(\d+(?:\.\d+)?)\s*second", re.I)


# --- Error classification ---------------------------------------------------------------


def rate_limited_message(retry_after: float | None) -> str:
    if retry_after is None:
        return "The model is busy right now (rate limited). Try again in a moment."
    wait = seconds_text(max(1, math.ceil(retry_after)))
    return f"The model is busy right now (rate limited). Try again in {wait}."


def _filter_phrase(categories: tuple[str, ...]) -> str:
    if not categories:
        return "Azure's content filter"
    return f"Azure's content filter ({', '.join(categories)})"


_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND: (
        "Azure no longer holds the earlier part of this conversation; it will be sent again "
        "from this app's copy."
    ),
    ErrorKind.AUTH_FAILED: (
        "The deployment rejected the app's credentials. Please contact an administrator."
    ),
    ErrorKind.BAD_REQUEST: (
        "The model service could not accept this request. Please try again; if it keeps "
        "happening, contact an administrator."
    ),
    ErrorKind.CONTEXT_TOO_LONG: (
        "This conversation has grown too long for the model. Start a new conversation or "
        "send a shorter message."
    ),
    ErrorKind.UNAVAILABLE: (
        "The model service is unavailable right now. Please try again in a moment."
    ),
    ErrorKind.TIMEOUT: "The model took too long to answer. Please try again.",
    ErrorKind.STREAM_DROPPED: (
        "The connection to the model was lost before the reply was finished. Please try again."
    ),
    ErrorKind.QUOTA_EXCEEDED: (
        "This deployment has used up its quota. Please contact an administrator."
    ),
    ErrorKind.ENDPOINT_REFUSED: (
        "The app may not connect to this deployment's endpoint. Please contact an administrator."
    ),
}

_CODE_KINDS: dict[str, ErrorKind] = {
    "content_filter": ErrorKind.CONTENT_FILTERED,
    "ResponsibleAIPolicyViolation": ErrorKind.CONTENT_FILTERED,
    "previous_response_not_found": ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND,
    "context_length_exceeded": ErrorKind.CONTEXT_TOO_LONG,
    "string_above_max_length": ErrorKind.CONTEXT_TOO_LONG,
    "insufficient_quota": ErrorKind.QUOTA_EXCEEDED,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "too_many_requests": ErrorKind.RATE_LIMITED,
    "429": ErrorKind.RATE_LIMITED,
    "invalid_api_key": ErrorKind.AUTH_FAILED,
    "unauthorized": ErrorKind.AUTH_FAILED,
    "PermissionDenied": ErrorKind.AUTH_FAILED,
    "401": ErrorKind.AUTH_FAILED,
    "403": ErrorKind.AUTH_FAILED,
    "timeout": ErrorKind.TIMEOUT,
    "server_error": ErrorKind.UNAVAILABLE,
    "internal_error": ErrorKind.UNAVAILABLE,
    "service_unavailable": ErrorKind.UNAVAILABLE,
    "500": ErrorKind.UNAVAILABLE,
    "503": ErrorKind.UNAVAILABLE,
}

# Failures worth another attempt as long as nothing has been shown yet.
_RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE})


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _filtered_categories(value: object) -> tuple[str, ...]:
    """Content-filter categories marked ``filtered`` anywhere in an Azure error or response.

    Azure reports them as ``{"hate": {"filtered": true, "severity": "high"}, ...}`` under
    ``innererror.content_filter_result`` or inside a ``content_filters`` list, depending on
    the API; both shapes are walked the same way.
    """
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, dict) and child.get("filtered") is True:
                    if key not in found:
                        found.append(key)
                elif key != "output":
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return tuple(found)


def _retry_after(headers: Mapping[str, str] | None, message: str) -> float | None:
    if headers is not None:
        for name in ("retry-after-ms", "x-ms-retry-after-ms"):
            value = headers.get(name)
            if value:
                with contextlib.suppress(ValueError):
                    return max(0.0, float(value) / 1000)
        value = headers.get("retry-after")
        if value:
            with contextlib.suppress(ValueError):
                return max(0.0, float(value))
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    hint = _RETRY_HINT.search(message)
    return float(hint.group(1)) if hint else None


def _request_id(headers: Mapping[str, str]) -> str:
    return headers.get("x-request-id") or headers.get("apim-request-id") or ""


def classify_error(
    body: object,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    in_stream: bool = False,
) -> LLMError:
    """Turn an Azure error object (``{"code", "message", ...}``) into an ``LLMError``.

    The code decides; the HTTP status only where the code says nothing.
    """
    error = _as_dict(body)
    code = str(error.get("code") or "")
    inner_code = str(_as_dict(error.get("innererror")).get("code") or "")
    upstream_message = str(error.get("message") or "")
    kind = _CODE_KINDS.get(code) or _CODE_KINDS.get(inner_code)
    if kind is None:
        if status == 404 and error.get("param") == "previous_response_id":
            kind = ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
        elif status == 429:
            kind = ErrorKind.RATE_LIMITED
        elif status in (401, 403):
            kind = ErrorKind.AUTH_FAILED
        elif status == 408:
            kind = ErrorKind.TIMEOUT
        elif status is not None and 400 <= status < 500:
            kind = ErrorKind.BAD_REQUEST
        else:
            kind = ErrorKind.UNAVAILABLE
    parts = dict.fromkeys((str(status or ""), code, inner_code, upstream_message))
    detail = redact(" ".join(part for part in parts if part))
    request_id = _request_id(headers) if headers is not None else ""
    common: dict[str, Any] = {
        "detail": detail[:_DETAIL_LIMIT],
        "status": status,
        "request_id": request_id,
    }
    if kind is ErrorKind.RATE_LIMITED:
        wait = _retry_after(headers, upstream_message)
        return LLMError(kind, rate_limited_message(wait), retry_after=wait, **common)
    if kind is ErrorKind.CONTENT_FILTERED:
        categories = _filtered_categories(error)
        if in_stream:
            message = f"The reply was stopped by {_filter_phrase(categories)}."
        else:
            message = (
                f"Your message was blocked by {_filter_phrase(categories)}. "
                "Please rephrase it and send it again."
            )
        return LLMError(kind, message, categories=categories, **common)
    return LLMError(kind, _MESSAGES[kind], **common)


def _error(kind: ErrorKind, detail: str, request_id: str = "") -> LLMError:
    return LLMError(kind, _MESSAGES[kind], detail=detail, request_id=request_id)


def _classify_exception(exc: Exception) -> tuple[LLMError, bool]:
    """Classify an SDK or token failure before any stream event; say whether to retry."""
    if isinstance(exc, openai.APIStatusError):
        error = classify_error(exc.body, status=exc.status_code, headers=exc.response.headers)
        return error, error.kind in _RETRYABLE
    if isinstance(exc, openai.APITimeoutError):
        # Only a connection that could not be opened in time is worth another try; a server
        # that accepted the request and then said nothing would most likely do it again.
        cause = exc.__cause__
        retry = isinstance(cause, httpx2.ConnectTimeout | httpx2.PoolTimeout)
        return _error(ErrorKind.TIMEOUT, f"timeout ({type(cause).__name__})"), retry
    if isinstance(exc, openai.APIConnectionError):
        refused = egress.refusal_in(exc)
        if refused is not None:
            return _error(ErrorKind.ENDPOINT_REFUSED, refused), False
        cause = exc.__cause__
        return _error(ErrorKind.UNAVAILABLE, f"connection failed ({type(cause).__name__})"), True
    if isinstance(exc, ClientAuthenticationError):
        detail = redact(f"Entra ID token request failed: {exc.message}")[:_DETAIL_LIMIT]
        return _error(ErrorKind.AUTH_FAILED, detail), False
    return _error(ErrorKind.UNAVAILABLE, type(exc).__name__), False


# --- Clients --------------------------------------------------------------------------------


def make_credential(deployment: Deployment) -> AsyncTokenCredential:
    """The Entra ID credential for a deployment.

    Module level so that tests can replace it: Entra ID's token service is the one part that
    cannot run here; every request after it is real.
    """
    return DefaultAzureCredential(
        managed_identity_client_id=deployment.managed_identity_client_id or None
    )


@dataclass(slots=True, eq=False)
class _Client:
    sdk: openai.AsyncOpenAI
    version: datetime | None
    loop: asyncio.AbstractEventLoop
    credential: AsyncTokenCredential | None = None
    leases: int = 0
    retired: bool = False

    async def aclose(self) -> None:
        await self.sdk.close()
        if self.credential is not None:
            await self.credential.close()


_clients: dict[int, _Client] = {}


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


def _build_client(deployment: Deployment) -> _Client:
    from chat.models import Deployment

    refusal = egress.endpoint_refusal(deployment.endpoint)
    if refusal is not None:
        raise LLMRequestError(_error(ErrorKind.ENDPOINT_REFUSED, refusal))
    credential: AsyncTokenCredential | None = None
    api_key: str | Callable[[], Awaitable[str]]
    if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
        credential = make_credential(deployment)
        api_key = get_bearer_token_provider(credential, settings.AZURE_OPENAI_TOKEN_SCOPE)
    else:
        api_key = _api_key(deployment)
    sdk = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=deployment.base_url,
        http_client=openai.DefaultAsyncHttpxClient(
            transport=egress.GuardedTransport(limits=openai.DEFAULT_CONNECTION_LIMITS),
            # Azure does not redirect API calls; following one would take the key elsewhere.
            follow_redirects=False,
        ),
        max_retries=0,  # retries happen in stream_reply, and only before the first token
        timeout=openai.Timeout(
            connect=settings.LLM_CONNECT_TIMEOUT,
            read=settings.LLM_READ_TIMEOUT,
            write=settings.LLM_CONNECT_TIMEOUT,
            pool=settings.LLM_CONNECT_TIMEOUT,
        ),
    )
    return _Client(sdk, deployment.updated_at, asyncio.get_running_loop(), credential)


async def _retire(client: _Client, loop: asyncio.AbstractEventLoop) -> None:
    if client.loop is not loop:
        # Its event loop is gone (or is another thread's); nothing can be awaited there.
        return
    client.retired = True
    if not client.leases:
        await client.aclose()


def _is_newer(version: datetime | None, than: datetime | None) -> bool:
    return version is not None and (than is None or version > than)


async def _cached_client(deployment: Deployment) -> _Client:
    loop = asyncio.get_running_loop()
    cached = _clients.get(deployment.pk)
    # A stale copy of a deployment (older updated_at) keeps using the newer client.
    if (
        cached is not None
        and cached.loop is loop
        and not _is_newer(deployment.updated_at, cached.version)
    ):
        return cached
    fresh = _build_client(deployment)
    _clients[deployment.pk] = fresh
    if cached is not None:
        await _retire(cached, loop)
    return fresh


@contextlib.asynccontextmanager
async def _client_for(deployment: Deployment) -> AsyncIterator[openai.AsyncOpenAI]:
    """Lend the deployment's client; one replaced meanwhile is closed by its last borrower."""
    if deployment.pk is None:
        transient = _build_client(deployment)
        try:
            yield transient.sdk
        finally:
            await transient.aclose()
        return
    client = await _cached_client(deployment)
    client.leases += 1
    try:
        yield client.sdk
    finally:
        client.leases -= 1
        if client.retired and not client.leases:
            await client.aclose()


async def aclose_clients() -> None:
    """Close every cached client (at shutdown)."""
    loop = asyncio.get_running_loop()
    clients = list(_clients.values())
    _clients.clear()
    for client in clients:
        await _retire(client, loop)


# --- Streaming ----------------------------------------------------------------------------


class _Retry(Exception):
    """A failure before any delta that another attempt may cure."""

    def __init__(self, error: LLMError) -> None:
        super().__init__(error.kind)
        self.error = error


def _usage(response: dict[str, Any]) -> Usage:
    usage = _as_dict(response.get("usage"))
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        reasoning_tokens=_as_dict(usage.get("output_tokens_details")).get("reasoning_tokens") or 0,
        cached_tokens=_as_dict(usage.get("input_tokens_details")).get("cached_tokens") or 0,
    )


def _terminal(
    kind: str, data: dict[str, Any], request_id: str, region: str
) -> Completed | Incomplete | Failed:
    response = _as_dict(data.get("response"))
    response_id = str(response.get("id") or "")
    if kind == "response.completed":
        return Completed(response_id, _usage(response), request_id, region)
    if kind == "response.incomplete":
        reason = str(_as_dict(response.get("incomplete_details")).get("reason") or "unknown")
        error = None
        if reason == "content_filter":
            categories = _filtered_categories(response)
            error = LLMError(
                ErrorKind.CONTENT_FILTERED,
                f"The reply was stopped by {_filter_phrase(categories)}.",
                detail="incomplete: content_filter",
                categories=categories,
                request_id=request_id,
            )
        return Incomplete(response_id, reason, _usage(response), request_id, region, error)
    if kind == "response.failed":
        body = response.get("error")
    else:  # "error": flat ({"type": "error", "code": ...}) or nested ({"error": {...}})
        body = data.get("error") if isinstance(data.get("error"), dict) else data
    error = classify_error(body, in_stream=True)
    return Failed(replace(error, request_id=request_id), response_id)


async def _drain(lines: AsyncIterator[str]) -> None:
    with contextlib.suppress(httpx2.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT):
            async for _ in lines:
                pass


async def _attempt(
    client: openai.AsyncOpenAI, body: dict[str, Any], deadline: float
) -> AsyncGenerator[StreamEvent]:
    """One request: yields its events and exactly one terminal event, or raises ``_Retry``."""
    delta_sent = False
    request_id = region = ""
    terminal: Completed | Incomplete | Failed | None = None
    may_retry = False  # a connection failure that another attempt may cure
    try:
        async with client.responses.with_streaming_response.create(**body) as response:
            headers = response.headers
            request_id = _request_id(headers)
            region = headers.get("x-ms-region", "")
            lines = response.iter_lines()
            data_lines: list[str] = []
            event_name = ""
            async for line in lines:
                if line.startswith("data:"):
                    data_lines.append(line[6:] if line.startswith("data: ") else line[5:])
                    continue
                if line:
                    if line.startswith("event:"):
                        event_name = line[6:].strip()
                    continue
                if not data_lines:
                    continue
                payload = data_lines[0] if len(data_lines) == 1 else "\n".join(data_lines)
                data_lines.clear()
                if payload == "[DONE]":
                    continue
                data = json.loads(payload)
                kind = data.get("type") or event_name
                event_name = ""
                if kind == _TEXT_DELTA:
                    delta_sent = True
                    yield TextDelta(data["delta"])
                elif kind in _REASONING_DELTAS:
                    delta_sent = True
                    yield ReasoningDelta(data["delta"])
                elif kind == "response.created":
                    response_id = str(_as_dict(data.get("response")).get("id") or "")
                    yield Started(response_id, request_id, region)
                elif kind in _TERMINAL_EVENTS:
                    terminal = _terminal(kind, data, request_id, region)
                    await _drain(lines)
                    break
                if time.monotonic() > deadline:
                    terminal = Failed(_error(ErrorKind.TIMEOUT, "request timeout", request_id))
                    break
            else:
                terminal = Failed(
                    _error(
                        ErrorKind.STREAM_DROPPED,
                        "stream ended without a terminal event",
                        request_id,
                    )
                )
                may_retry = True
    except httpx2.TimeoutException as exc:
        # Silence past LLM_READ_TIMEOUT in the middle of a stream: a stall, not worth repeating.
        terminal = Failed(
            _error(ErrorKind.STREAM_DROPPED, f"stalled ({type(exc).__name__})", request_id)
        )
    except httpx2.TransportError as exc:
        terminal = Failed(
            _error(ErrorKind.STREAM_DROPPED, f"connection lost ({type(exc).__name__})", request_id)
        )
        may_retry = True
    except (json.JSONDecodeError, KeyError, AttributeError) as exc:
        terminal = Failed(
            _error(
                ErrorKind.STREAM_DROPPED,
                f"malformed stream event ({type(exc).__name__})",
                request_id,
            )
        )
    except (openai.APIError, ClientAuthenticationError) as exc:
        error, may_retry = _classify_exception(exc)
        terminal = Failed(error)
    if (
        isinstance(terminal, Failed)
        and not delta_sent
        and (may_retry or terminal.error.kind in _RETRYABLE)
    ):
        raise _Retry(terminal.error)
    yield terminal


def _retry_wait(error: LLMError, attempt: int) -> float:
    if error.retry_after is not None:
        return error.retry_after
    return min(0.5 * 2.0**attempt, float(settings.LLM_MAX_RETRY_WAIT))


async def stream_reply(
    deployment: Deployment,
    *,
    input: str | list[dict[str, str]],
    previous_response_id: str | None,
    instructions: str,
    store: bool,
    max_output_tokens: int | None = None,
    max_retries: int | None = None,
) -> AsyncGenerator[StreamEvent]:
    """Stream one reply: ``Started``, deltas, then exactly one terminal event.

    ``input`` is the new user text (continuing ``previous_response_id``) or the whole history
    as ``{"role", "content"}`` items. Failures before the first delta that may pass (429,
    5xx, connection errors) are retried up to ``LLM_MAX_RETRIES`` times, honouring
    Retry-After (``max_retries`` overrides the setting: a caller with another deployment to
    try passes 0); a retried request may yield a second ``Started`` with a new response id.
    Nothing is retried once a delta (text or reasoning) was yielded, nor a
    ``previous_response_not_found`` (the caller rebuilds the history instead).
    """
    if max_output_tokens is not None and max_output_tokens < MIN_OUTPUT_TOKENS:
        raise ValueError(f"max_output_tokens must be at least {MIN_OUTPUT_TOKENS}")
    body: dict[str, Any] = {
        "model": deployment.deployment_name,
        "input": input,
        "instructions": instructions,
        "store": store,
        "stream": True,
    }
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    if deployment.reasons:
        body["reasoning"] = {"summary": "auto"}
    deadline = time.monotonic() + settings.LLM_REQUEST_TIMEOUT
    retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
    try:
        async with _client_for(deployment) as client:
            attempt = 0
            while True:
                try:
                    async with contextlib.aclosing(_attempt(client, body, deadline)) as events:
                        async for event in events:
                            yield event
                    return
                except _Retry as retry:
                    error = retry.error
                    wait = _retry_wait(error, attempt)
                    if attempt >= retries or wait > settings.LLM_MAX_RETRY_WAIT:
                        logger.warning(
                            "model request failed: %s (%s), deployment %s, after %d retries",
                            error.kind,
                            error.detail,
                            deployment.pk,
                            attempt,
                        )
                        yield Failed(error)
                        return
                    attempt += 1
                    logger.info(
                        "retrying model request in %.2fs: %s (%s), deployment %s",
                        wait,
                        error.kind,
                        error.detail,
                        deployment.pk,
                    )
                    await asyncio.sleep(wait)
    except LLMRequestError as exc:
        logger.warning("model request not sent: %s, deployment %s", exc.error.detail, deployment.pk)
        yield Failed(exc.error)


# --- Other requests -----------------------------------------------------------------------


async def _call[T](
    deployment: Deployment, request: Callable[[openai.AsyncOpenAI], Awaitable[T]]
) -> T:
    """Run one non-streaming request, classifying any failure as ``LLMRequestError``."""
    try:
        async with asyncio.timeout(settings.LLM_REQUEST_TIMEOUT), _client_for(deployment) as client:
            return await request(client)
    except TimeoutError as exc:
        raise LLMRequestError(_error(ErrorKind.TIMEOUT, "request timeout")) from exc
    except (openai.APIError, ClientAuthenticationError) as exc:
        error, _ = _classify_exception(exc)
        raise LLMRequestError(error) from exc


def _is_not_found(error: LLMError) -> bool:
    return error.status == 404 and error.kind is not ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND


def _output_text(response: dict[str, Any]) -> str:
    return "".join(
        str(part.get("text") or "")
        for item in response.get("output") or ()
        if isinstance(item, dict)
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )


async def retrieve_response(deployment: Deployment, response_id: str) -> RemoteResponse | None:
    """The stored response as Azure holds it, or None when Azure no longer has it."""
    try:
        raw = await _call(
            deployment, lambda client: client.responses.with_raw_response.retrieve(response_id)
        )
    except LLMRequestError as exc:
        if _is_not_found(exc.error):
            return None
        raise
    response = _as_dict(raw.http_response.json())
    return RemoteResponse(
        response_id=str(response.get("id") or response_id),
        status=str(response.get("status") or ""),
        model=str(response.get("model") or ""),
        output_text=_output_text(response),
        usage=_usage(response),
    )


async def delete_response(deployment: Deployment, response_id: str) -> bool:
    """Delete a stored response; True once Azure no longer has it (404 included)."""
    try:
        await _call(deployment, lambda client: client.responses.delete(response_id))
    except LLMRequestError as exc:
        if _is_not_found(exc.error):
            return True
        raise
    return True


async def cancel_response(deployment: Deployment, response_id: str) -> bool:
    """Ask Azure to stop a response; False when Azure does not have it (404)."""
    try:
        await _call(
            deployment, lambda client: client.responses.with_raw_response.cancel(response_id)
        )
    except LLMRequestError as exc:
        if _is_not_found(exc.error):
            return False
        raise
    return True


async def test_connection(deployment: Deployment) -> ConnectionReport:
    """Send the smallest request the deployment accepts and report how it went."""
    started = time.perf_counter()
    try:
        raw = await _call(
            deployment,
            lambda client: client.responses.with_raw_response.create(
                model=deployment.deployment_name,
                input="Reply with the word OK.",
                max_output_tokens=MIN_OUTPUT_TOKENS,
                store=False,
            ),
        )
    except LLMRequestError as exc:
        return ConnectionReport(ok=False, error=exc.error)
    latency_ms = round((time.perf_counter() - started) * 1000)
    response = _as_dict(raw.http_response.json())
    return ConnectionReport(
        ok=True,
        latency_ms=latency_ms,
        region=raw.headers.get("x-ms-region", ""),
        model=str(response.get("model") or ""),
        request_id=_request_id(raw.headers),
    )
