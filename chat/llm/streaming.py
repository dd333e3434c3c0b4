"""Streaming a reply: one request at a time, its server-sent events read with httpx-sse from
the SDK's raw response, and only the events that matter parsed (building the SDK's event
objects for every delta costs about twice the CPU). Failures before the first delta that may
pass are tried again, in one loop: nothing is retried once text was shown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from azure.core.exceptions import ClientAuthenticationError
from django.conf import settings
from django.utils.translation import gettext
from httpx_sse import EventSource, ServerSentEvent, SSEError

from chat.llm.clients import sdk_client
from chat.llm.errors import (
    RETRYABLE,
    as_dict,
    classify_error,
    classify_exception,
    error_of,
    filter_phrase,
    filtered_categories,
    request_id_of,
)
from chat.llm.events import (
    Completed,
    ErrorKind,
    Failed,
    Incomplete,
    LLMError,
    LLMRequestError,
    ReasoningDelta,
    ReasoningItem,
    Requesting,
    Retrying,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from chat.models import Deployment

logger = logging.getLogger(__name__)

# Azure refuses smaller limits on the Responses API.
MIN_OUTPUT_TOKENS = 16

# After the terminal event the rest of the body (normally nothing) is read so that the
# connection goes back to the pool instead of being torn down; a server that keeps the
# stream open longer than this loses its connection instead.
_DRAIN_TIMEOUT = 2.0

_TEXT_DELTA = "response.output_text.delta"
_SUMMARY_PART = "response.reasoning_summary_part.added"
_TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)
_REASONING_DELTAS = frozenset(
    {
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)


@dataclass(frozen=True, slots=True)
class _MayRetry:
    """An attempt failed before any delta, in a way another attempt may cure."""

    error: LLMError


def usage_of(response: dict[str, Any]) -> Usage:
    usage = as_dict(response.get("usage"))
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        reasoning_tokens=as_dict(usage.get("output_tokens_details")).get("reasoning_tokens") or 0,
        cached_tokens=as_dict(usage.get("input_tokens_details")).get("cached_tokens") or 0,
    )


def _terminal(
    kind: str, data: dict[str, Any], request_id: str, region: str
) -> Completed | Incomplete | Failed:
    response = as_dict(data.get("response"))
    response_id = str(response.get("id") or "")
    if kind == "response.completed":
        return Completed(response_id, usage_of(response), request_id, region)
    if kind == "response.incomplete":
        reason = str(as_dict(response.get("incomplete_details")).get("reason") or "unknown")
        error = None
        if reason == "content_filter":
            categories = filtered_categories(response)
            error = LLMError(
                ErrorKind.CONTENT_FILTERED,
                gettext("The reply was stopped by %(filter)s.")
                % {"filter": filter_phrase(categories)},
                detail="incomplete: content_filter",
                categories=categories,
                request_id=request_id,
            )
        return Incomplete(response_id, reason, usage_of(response), request_id, region, error)
    if kind == "response.failed":
        body = response.get("error")
    else:  # "error": flat ({"type": "error", "code": ...}) or nested ({"error": {...}})
        body = data.get("error") if isinstance(data.get("error"), dict) else data
    error = classify_error(body, in_stream=True)
    return Failed(replace(error, request_id=request_id), response_id)


async def _drain(events: AsyncIterator[ServerSentEvent]) -> None:
    with contextlib.suppress(httpx2.HTTPError, SSEError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT):
            async for _ in events:
                pass


type _Opener = Callable[[], AbstractAsyncContextManager[Any]]


async def _attempt(
    open_stream: _Opener, deadline: float, *, background: bool
) -> AsyncGenerator[StreamEvent | _MayRetry]:
    """One request: yields its events and exactly one terminal event, or ``_MayRetry``.

    A background response, once named, goes on without this connection: it is resumed, never
    asked for again."""
    delta_sent = False
    request_id = region = ""
    terminal: Completed | Incomplete | Failed | None = None
    may_retry = False  # a connection failure that another attempt may cure
    try:
        async with open_stream() as response:
            headers = response.headers
            request_id = request_id_of(headers)
            region = headers.get("x-ms-region", "")
            events = EventSource(response.http_response).aiter_sse()
            async for sse in events:
                if sse.data == "[DONE]" or not sse.data:
                    continue
                data = json.loads(sse.data)
                kind = data.get("type") or sse.event
                if kind == _TEXT_DELTA:
                    delta_sent = True
                    yield TextDelta(data["delta"], data.get("sequence_number", -1))
                elif kind in _REASONING_DELTAS:
                    delta_sent = True
                    yield ReasoningDelta(data["delta"], data.get("sequence_number", -1))
                elif kind == _SUMMARY_PART and data.get("summary_index"):
                    # A summary comes in parts, each a paragraph of its own.
                    yield ReasoningDelta("\n\n")
                elif kind == "response.output_item.done":
                    item = as_dict(data.get("item"))
                    if item.get("type") == "reasoning" and item.get("encrypted_content"):
                        yield ReasoningItem(item)
                elif kind == "response.created":
                    response_id = str(as_dict(data.get("response")).get("id") or "")
                    delta_sent = delta_sent or (background and bool(response_id))
                    yield Started(response_id, request_id, region)
                elif kind in _TERMINAL_EVENTS:
                    terminal = _terminal(kind, data, request_id, region)
                    await _drain(events)
                    break
                if time.monotonic() > deadline:
                    terminal = Failed(error_of(ErrorKind.TIMEOUT, "request timeout", request_id))
                    break
            else:
                terminal = Failed(
                    error_of(
                        ErrorKind.STREAM_DROPPED,
                        "stream ended without a terminal event",
                        request_id,
                    )
                )
                may_retry = True
    except httpx2.TimeoutException as exc:
        # Silence past LLM_READ_TIMEOUT in the middle of a stream: a stall, not worth repeating.
        terminal = Failed(
            error_of(ErrorKind.STREAM_DROPPED, f"stalled ({type(exc).__name__})", request_id)
        )
    except httpx2.TransportError as exc:
        terminal = Failed(
            error_of(
                ErrorKind.STREAM_DROPPED, f"connection lost ({type(exc).__name__})", request_id
            )
        )
        may_retry = True
    except (json.JSONDecodeError, KeyError, AttributeError, SSEError) as exc:
        terminal = Failed(
            error_of(
                ErrorKind.STREAM_DROPPED,
                f"malformed stream event ({type(exc).__name__})",
                request_id,
            )
        )
    except (openai.APIError, ClientAuthenticationError) as exc:
        error, may_retry = classify_exception(exc)
        terminal = Failed(error)
    if (
        isinstance(terminal, Failed)
        and not delta_sent
        and (may_retry or terminal.error.kind in RETRYABLE)
    ):
        yield _MayRetry(terminal.error)
        return
    yield terminal


def _creating(client: openai.AsyncOpenAI, body: dict[str, Any]) -> _Opener:
    return lambda: client.responses.with_streaming_response.create(**body)


def _retry_wait(error: LLMError, attempt: int) -> float:
    if error.retry_after is not None:
        return error.retry_after
    return min(0.5 * 2.0**attempt, float(settings.LLM_MAX_RETRY_WAIT))


async def stream_reply(
    deployment: Deployment,
    *,
    input: str | list[dict[str, Any]],
    previous_response_id: str | None,
    instructions: str,
    store: bool,
    max_output_tokens: int | None = None,
    max_retries: int | None = None,
    reasoning_effort: str | None = None,
    background: bool = False,
) -> AsyncGenerator[StreamEvent]:
    """Stream one reply: ``Requesting`` and ``Started``, deltas, then exactly one terminal
    event (``Retrying`` and ``Requesting`` again before each retry).

    ``input`` is the new user text (continuing ``previous_response_id``) or the whole history
    as ``{"role", "content"}`` items. Failures before the first delta that may pass (429,
    5xx, connection errors) are retried up to ``LLM_MAX_RETRIES`` times, honouring
    Retry-After (``max_retries`` overrides the setting: a caller with another deployment to
    try passes 0); a retried request may yield a second ``Started`` with a new response id.
    Nothing is retried once a delta (text or reasoning) was yielded, nor a
    ``previous_response_not_found`` (the caller rebuilds the history instead).

    A reasoning model gets ``reasoning_effort`` (the deployment's or the conversation's) and
    streams its summary as ``ReasoningDelta``; with ``store`` off, its finished reasoning comes
    back sealed as ``ReasoningItem``, to be sent verbatim with the next rebuilt history.

    With ``background`` (a stored reply only) Azure generates the reply whatever becomes of
    this connection, and the deltas carry their sequence numbers: once it is named, a failure
    of the stream ends it with ``Failed`` and no retry, for ``resume_reply`` to take up.
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
    if background:
        body["background"] = True
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    if deployment.reasons:
        body["reasoning"] = {"summary": "auto"}
        if reasoning_effort:
            body["reasoning"]["effort"] = reasoning_effort
        if not store:
            # Nothing is kept on Azure: the reasoning comes back sealed, to be sent again.
            body["include"] = ["reasoning.encrypted_content"]
    deadline = time.monotonic() + settings.LLM_REQUEST_TIMEOUT
    retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
    try:
        async with sdk_client(deployment) as client:
            for attempt in range(retries + 1):
                failed: _MayRetry | None = None
                yield Requesting()
                opener = _creating(client, body)
                attempt_events = _attempt(opener, deadline, background=background)
                async with contextlib.aclosing(attempt_events) as events:
                    async for event in events:
                        if isinstance(event, _MayRetry):
                            failed = event
                        else:
                            yield event
                if failed is None:
                    return
                error = failed.error
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
                logger.info(
                    "retrying model request in %.2fs: %s (%s), deployment %s",
                    wait,
                    error.kind,
                    error.detail,
                    deployment.pk,
                )
                yield Retrying(wait)
                await asyncio.sleep(wait)
    except LLMRequestError as exc:
        logger.warning("model request not sent: %s, deployment %s", exc.error.detail, deployment.pk)
        yield Failed(exc.error)


async def resume_reply(
    deployment: Deployment, response_id: str, *, starting_after: int
) -> AsyncGenerator[StreamEvent]:
    """The rest of a background reply: its events after sequence number ``starting_after``
    (``GET /responses/{id}?stream=true&starting_after=N``), then exactly one terminal event.

    Not retried here: after a failure the caller resumes again from the last delta it took."""
    query: dict[str, Any] = {"stream": True}
    if starting_after >= 0:
        query["starting_after"] = starting_after
    deadline = time.monotonic() + settings.LLM_REQUEST_TIMEOUT
    try:
        async with sdk_client(deployment) as client:

            def opener() -> AbstractAsyncContextManager[Any]:
                return client.responses.with_streaming_response.retrieve(response_id, **query)

            async with contextlib.aclosing(_attempt(opener, deadline, background=True)) as events:
                async for event in events:
                    yield (
                        Failed(event.error, response_id) if isinstance(event, _MayRetry) else event
                    )
    except LLMRequestError as exc:
        logger.warning("resume not sent: %s, deployment %s", exc.error.detail, deployment.pk)
        yield Failed(exc.error, response_id)
