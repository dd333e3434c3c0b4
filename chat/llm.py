"""The model gateway: the only module that imports ``openai`` or ``azure.identity``.

It turns the SDK's events into the project's own small event types so the rest of the app
never sees SDK objects, and classifies every failure by Azure's error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    CONTENT_FILTERED = "content_filtered"
    PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"
    AUTH_FAILED = "auth_failed"
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    STREAM_DROPPED = "stream_dropped"
    QUOTA_EXCEEDED = "quota_exceeded"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LLMError:
    kind: ErrorKind
    message: str  # for the person using the chat: plain, human, no internals
    detail: str = ""  # for logs and admins: codes and upstream messages, never secrets
    status: int | None = None
    retry_after: float | None = None  # seconds
    categories: tuple[str, ...] = ()  # content-filter categories that fired
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Started:
    """The upstream accepted the request (``response.created``)."""

    response_id: str
    request_id: str = ""
    region: str = ""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    response_id: str
    usage: Usage = field(default_factory=Usage)
    request_id: str = ""
    region: str = ""


@dataclass(frozen=True, slots=True)
class Incomplete:
    response_id: str
    reason: str  # e.g. "content_filter", "max_output_tokens"
    usage: Usage = field(default_factory=Usage)
    request_id: str = ""
    region: str = ""
    error: LLMError | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    error: LLMError
    response_id: str = ""


StreamEvent = Started | TextDelta | ReasoningDelta | Completed | Incomplete | Failed
