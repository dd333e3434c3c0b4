"""The model gateway: the only package that imports ``openai`` or ``azure.identity``.

It turns the SDK's events into the project's own small event types (:mod:`chat.llm.events`),
so the rest of the app never sees SDK objects, and classifies every failure by Azure's error
code (:mod:`chat.llm.errors`). :mod:`chat.llm.clients` holds the SDK clients on one shared
connection pool per event loop; :mod:`chat.llm.streaming` streams a reply;
:mod:`chat.llm.calls` makes the other requests.
"""

from chat.llm.calls import cancel_response, delete_response, retrieve_response, test_connection
from chat.llm.clients import aclose_clients, sdk_client
from chat.llm.errors import classify_error, rate_limited_message
from chat.llm.events import (
    Completed,
    ConnectionReport,
    ErrorKind,
    Failed,
    Incomplete,
    LLMError,
    LLMRequestError,
    ReasoningDelta,
    ReasoningItem,
    RemoteResponse,
    Requesting,
    Retrying,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)
from chat.llm.streaming import MIN_OUTPUT_TOKENS, resume_reply, stream_reply

__all__ = [
    "MIN_OUTPUT_TOKENS",
    "Completed",
    "ConnectionReport",
    "ErrorKind",
    "Failed",
    "Incomplete",
    "LLMError",
    "LLMRequestError",
    "ReasoningDelta",
    "ReasoningItem",
    "RemoteResponse",
    "Requesting",
    "Retrying",
    "Started",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "aclose_clients",
    "cancel_response",
    "classify_error",
    "delete_response",
    "rate_limited_message",
    "resume_reply",
    "retrieve_response",
    "sdk_client",
    "stream_reply",
    "test_connection",
]
