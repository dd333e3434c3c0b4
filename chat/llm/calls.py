"""The requests that are not a reply: read, delete and cancel a stored response, and the
smallest request there is, to test a deployment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import openai
from azure.core.exceptions import ClientAuthenticationError
from django.conf import settings

from chat.llm.clients import sdk_client
from chat.llm.errors import as_dict, classify_exception, error_of, request_id_of
from chat.llm.events import ConnectionReport, ErrorKind, LLMError, LLMRequestError, RemoteResponse
from chat.llm.streaming import MIN_OUTPUT_TOKENS, usage_of

if TYPE_CHECKING:
    from chat.models import Deployment


async def _call[T](
    deployment: Deployment, request: Callable[[openai.AsyncOpenAI], Awaitable[T]]
) -> T:
    """Run one non-streaming request, classifying any failure as ``LLMRequestError``."""
    try:
        async with asyncio.timeout(settings.LLM_REQUEST_TIMEOUT), sdk_client(deployment) as client:
            return await request(client)
    except TimeoutError as exc:
        raise LLMRequestError(error_of(ErrorKind.TIMEOUT, "request timeout")) from exc
    except (openai.APIError, ClientAuthenticationError) as exc:
        error, _ = classify_exception(exc)
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
    response = as_dict(raw.http_response.json())
    return RemoteResponse(
        response_id=str(response.get("id") or response_id),
        status=str(response.get("status") or ""),
        model=str(response.get("model") or ""),
        output_text=_output_text(response),
        usage=usage_of(response),
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
    response = as_dict(raw.http_response.json())
    return ConnectionReport(
        ok=True,
        latency_ms=latency_ms,
        region=raw.headers.get("x-ms-region", ""),
        model=str(response.get("model") or ""),
        request_id=request_id_of(raw.headers),
    )
