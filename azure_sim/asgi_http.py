"""Just enough HTTP on raw ASGI: read a request, answer with JSON or an event stream."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 32 * 1024 * 1024


class HTTPError(Exception):
    """An error answered with Azure's error body: ``{"error": {code, message, param, type}}``."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        error_type: str | None = "invalid_request_error",
        details: dict[str, Any] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.error_type = error_type
        self.details = details or {}
        self.headers = headers or []


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    client_host: str
    body: bytes
    parsed: Any = None  # the body as JSON, parsed once for the handler and the request log
    parse_error: str | None = None

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        if self.parse_error is not None:
            raise HTTPError(
                400, None, f"We could not parse the JSON body of your request: {self.parse_error}"
            )
        return self.parsed

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise HTTPError(400, None, "The request body must be a JSON object.")
        return body


async def read_request(scope: Scope, receive: Receive) -> Request:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPError(413, None, "The request body is too large.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }
    client = scope.get("client") or ("", 0)
    body = b"".join(chunks)
    parsed, parse_error = _parse_json(body)
    return Request(
        method=scope["method"],
        path=scope["path"],
        query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
        headers=headers,
        client_host=client[0],
        body=body,
        parsed=parsed,
        parse_error=parse_error,
    )


def _parse_json(body: bytes) -> tuple[Any, str | None]:
    if not body:
        return None, None
    try:
        return json.loads(body), None
    except ValueError as exc:
        return None, str(exc)


class DisconnectWatcher:
    """Notices the client leaving while a reply is being generated."""

    def __init__(self, receive: Receive, on_gone: Callable[[], None] | None = None) -> None:
        self.gone = asyncio.Event()
        self._on_gone = on_gone
        self._task = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone.set()
        if self._on_gone is not None:
            self._on_gone()

    def stop(self) -> None:
        self._task.cancel()


_JSON = (b"content-type", b"application/json")
_EVENT_STREAM = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class Reply:
    """Answers one request, with Azure's tracing headers on every reply."""

    def __init__(self, send: Send, *, region: str, log_entry: dict[str, Any] | None) -> None:
        self._send = send
        self._region = region
        self._log_entry = log_entry
        self.deployment = ""
        self.request_id = str(uuid.uuid4())

    def _headers(self, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", self.request_id.encode()),
            (b"apim-request-id", str(uuid.uuid4()).encode()),
            (b"x-ms-region", self._region.encode()),
            (b"x-ms-deployment-name", self.deployment.encode("latin-1", "replace")),
            *extra,
        ]

    def record_response_id(self, response_id: str) -> None:
        """The request log names the response a create made (for checks of the ledger)."""
        if self._log_entry is not None:
            self._log_entry["response_id"] = response_id

    async def _start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self._log_entry is not None:
            self._log_entry["status"] = status
        await self._send(
            {"type": "http.response.start", "status": status, "headers": self._headers(headers)}
        )

    async def json(
        self, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        await self._start(
            status, [_JSON, (b"content-length", str(len(data)).encode()), *(headers or [])]
        )
        await self._send({"type": "http.response.body", "body": data})

    async def error(self, error: HTTPError) -> None:
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "param": error.param,
                "type": error.error_type,
                **error.details,
            }
        }
        await self.json(error.status, body, error.headers)

    async def start_stream(self) -> None:
        await self._start(200, list(_EVENT_STREAM))

    async def chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data})

    async def start_truncated(self) -> None:
        """Promise a JSON body and send only its first bytes; returning then drops the line."""
        await self._start(200, [_JSON, (b"content-length", b"4096")])
        await self.chunk(b'{"id":"resp_')
