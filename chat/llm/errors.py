"""Every failure of a model request, classified by Azure's error code into an ``LLMError``
with a sentence for the person and a redacted detail for the log."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import openai
from azure.core.exceptions import ClientAuthenticationError
from django.utils.translation import gettext, gettext_lazy

from chat import egress
from chat.durations import seconds_text
from chat.llm.events import ErrorKind, LLMError
from chat.redaction import redact

DETAIL_LIMIT = 500

_RETRY_HINT = re.compile(r"(?:retry after|try again in)\s+(\d+(?:\.\d+)?)\s*second", re.I)


def rate_limited_message(retry_after: float | None) -> str:
    if retry_after is None:
        return gettext("The model is busy right now (rate limited). Try again in a moment.")
    wait = seconds_text(max(1, math.ceil(retry_after)))
    return gettext("The model is busy right now (rate limited). Try again in %(wait)s.") % {
        "wait": wait
    }


def filter_phrase(categories: tuple[str, ...]) -> str:
    if not categories:
        return gettext("Azure's content filter")
    names = gettext(", ").join(str(_CATEGORY_NAMES.get(c, c)) for c in categories)
    return gettext("Azure's content filter (%(categories)s)") % {"categories": names}


# Azure's content-filter categories, as the person reads them.
_CATEGORY_NAMES = {
    "hate": gettext_lazy("hate"),
    "sexual": gettext_lazy("sexual content"),
    "violence": gettext_lazy("violence"),
    "self_harm": gettext_lazy("self-harm"),
    "jailbreak": gettext_lazy("jailbreak attempt"),
    "protected_material_text": gettext_lazy("protected text"),
    "protected_material_code": gettext_lazy("protected code"),
    "profanity": gettext_lazy("profanity"),
}


_MESSAGES = {
    ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND: gettext_lazy(
        "Azure no longer holds the earlier part of this conversation; it will be sent again "
        "from this app's copy."
    ),
    ErrorKind.AUTH_FAILED: gettext_lazy(
        "The deployment rejected the app's credentials. Please contact an administrator."
    ),
    ErrorKind.BAD_REQUEST: gettext_lazy(
        "The model service could not accept this request. Please try again; if it keeps "
        "happening, contact an administrator."
    ),
    ErrorKind.CONTEXT_TOO_LONG: gettext_lazy(
        "This conversation has grown too long for the model. Start a new conversation or "
        "send a shorter message."
    ),
    ErrorKind.UNAVAILABLE: gettext_lazy(
        "The model service is unavailable right now. Please try again in a moment."
    ),
    ErrorKind.TIMEOUT: gettext_lazy("The model took too long to answer. Please try again."),
    ErrorKind.STREAM_DROPPED: gettext_lazy(
        "The connection to the model was lost before the reply was finished. Please try again."
    ),
    ErrorKind.QUOTA_EXCEEDED: gettext_lazy(
        "This deployment has used up its quota. Please contact an administrator."
    ),
    ErrorKind.ENDPOINT_REFUSED: gettext_lazy(
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
RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE})


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def filtered_categories(value: object) -> tuple[str, ...]:
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


def request_id_of(headers: Mapping[str, str]) -> str:
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
    error = as_dict(body)
    code = str(error.get("code") or "")
    inner_code = str(as_dict(error.get("innererror")).get("code") or "")
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
    request_id = request_id_of(headers) if headers is not None else ""
    common: dict[str, Any] = {
        "detail": detail[:DETAIL_LIMIT],
        "status": status,
        "request_id": request_id,
    }
    if kind is ErrorKind.RATE_LIMITED:
        wait = _retry_after(headers, upstream_message)
        return LLMError(kind, rate_limited_message(wait), retry_after=wait, **common)
    if kind is ErrorKind.CONTENT_FILTERED:
        categories = filtered_categories(error)
        if in_stream:
            message = gettext("The reply was stopped by %(filter)s.") % {
                "filter": filter_phrase(categories)
            }
        else:
            message = gettext(
                "Your message was blocked by %(filter)s. Please rephrase it and send it again."
            ) % {"filter": filter_phrase(categories)}
        return LLMError(kind, message, categories=categories, **common)
    return LLMError(kind, str(_MESSAGES[kind]), **common)


def error_of(kind: ErrorKind, detail: str, request_id: str = "") -> LLMError:
    return LLMError(kind, str(_MESSAGES[kind]), detail=detail, request_id=request_id)


def classify_exception(exc: Exception) -> tuple[LLMError, bool]:
    """Classify an SDK or token failure before any stream event; say whether to retry."""
    if isinstance(exc, openai.APIStatusError):
        error = classify_error(exc.body, status=exc.status_code, headers=exc.response.headers)
        return error, error.kind in RETRYABLE
    if isinstance(exc, openai.APITimeoutError):
        # Only a connection that could not be opened in time is worth another try; a server
        # that accepted the request and then said nothing would most likely do it again.
        cause = exc.__cause__
        retry = isinstance(cause, httpx2.ConnectTimeout | httpx2.PoolTimeout)
        return error_of(ErrorKind.TIMEOUT, f"timeout ({type(cause).__name__})"), retry
    if isinstance(exc, openai.APIConnectionError):
        refused = egress.refusal_in(exc)
        if refused is not None:
            return error_of(ErrorKind.ENDPOINT_REFUSED, refused), False
        cause = exc.__cause__
        return error_of(ErrorKind.UNAVAILABLE, f"connection failed ({type(cause).__name__})"), True
    if isinstance(exc, ClientAuthenticationError):
        detail = redact(f"Entra ID token request failed: {exc.message}")[:DETAIL_LIMIT]
        return error_of(ErrorKind.AUTH_FAILED, detail), False
    return error_of(ErrorKind.UNAVAILABLE, type(exc).__name__), False
