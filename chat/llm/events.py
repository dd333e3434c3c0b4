"""The gateway's own small types: what the rest of the app sees instead of SDK objects."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chat.redaction import redact


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
    ENDPOINT_REFUSED = "endpoint_refused"


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

    def __post_init__(self) -> None:
        # Upstream services repeat what they were sent; every consumer of an error (pages,
        # admin messages and their cookie, logs, saved messages) gets it without keys.
        object.__setattr__(self, "message", redact(self.message))
        object.__setattr__(self, "detail", redact(self.detail))


@dataclass(frozen=True, slots=True)
class Requesting:
    """A request for the reply goes out now (each attempt, retries included): Azure will
    name its response with ``Started`` or refuse it."""


@dataclass(frozen=True, slots=True)
class Retrying:
    """The request was refused before Azure named a response (so it keeps no copy of it);
    another goes out after ``wait`` seconds."""

    wait: float


@dataclass(frozen=True, slots=True)
class Started:
    """The upstream accepted the request (``response.created``)."""

    response_id: str
    request_id: str = ""
    region: str = ""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    # The event's ``sequence_number``: a background reply is resumed after the last one taken.
    sequence: int = -1


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    sequence: int = -1


@dataclass(frozen=True, slots=True)
class ReasoningItem:
    """A finished reasoning item, kept to be sent back verbatim with a rebuilt history: on a
    stateless deployment it carries ``encrypted_content``, the model's context that Azure does
    not keep."""

    item: dict[str, Any]


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


StreamEvent = (
    Requesting
    | Retrying
    | Started
    | TextDelta
    | ReasoningDelta
    | ReasoningItem
    | Completed
    | Incomplete
    | Failed
)


class LLMRequestError(Exception):
    """A classified failure of a request that is not a stream (retrieve, delete, cancel)."""

    def __init__(self, error: LLMError) -> None:
        super().__init__(f"{error.kind}: {error.detail or error.message}")
        self.error = error


@dataclass(frozen=True, slots=True)
class RemoteResponse:
    """What Azure still holds for a stored response."""

    response_id: str
    status: str
    model: str = ""
    output_text: str = ""
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    ok: bool
    latency_ms: int = 0
    region: str = ""
    model: str = ""
    request_id: str = ""
    error: LLMError | None = None
