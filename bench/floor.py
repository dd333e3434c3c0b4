"""The floor: the least a relay can do, measured beside the app in the same run.

A Starlette app with one websocket route and no database, no sign-in, no rendering. Each frame
the client sends is a question (``{"text": ...}``); the relay asks the simulator with
``responses.create(stream=True)`` through the ``openai`` SDK's raw streaming response (as the
app's gateway does), chains ``previous_response_id`` along the socket, and forwards only the
text deltas, each as a text frame of its own; a binary frame with the terminal status ends the
reply. ``bench.harness.Stack.start_floor`` serves it with uvicorn, pinned and configured like the
app: ``FLOOR_UPSTREAM`` is the simulator's ``/openai/v1/`` URL, ``FLOOR_MODEL`` the deployment
with its simulator options, ``SIMULATOR_API_KEY`` the key.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import openai
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

TEXT_DELTA = "response.output_text.delta"
TERMINAL = {
    "response.completed": b"completed",
    "response.incomplete": b"incomplete",
    "response.failed": b"failed",
    "error": b"failed",
}


async def _answer(
    websocket: WebSocket, client: openai.AsyncOpenAI, text: str, previous: str | None
) -> str | None:
    """Relay one reply; returns the response id the next turn continues."""
    body: dict[str, Any] = {"model": os.environ["FLOOR_MODEL"], "input": text, "store": True}
    if previous:
        body["previous_response_id"] = previous
    event, status = "", b"failed"
    async with client.responses.with_streaming_response.create(stream=True, **body) as response:
        async for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif not line.startswith("data: "):
                continue
            elif event == TEXT_DELTA:
                await websocket.send_text(json.loads(line[6:])["delta"])
            elif event == "response.created":
                previous = json.loads(line[6:])["response"]["id"]
            elif event in TERMINAL:
                status = TERMINAL[event]
    await websocket.send_bytes(status)
    return previous


async def relay(websocket: WebSocket) -> None:
    await websocket.accept()
    client: openai.AsyncOpenAI = websocket.app.state.client
    previous: str | None = None
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            question = json.loads(await websocket.receive_text())
            previous = await _answer(websocket, client, question["text"], previous)


async def ready(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(application: Starlette) -> AsyncIterator[None]:
    # The SDK's default retries, as the app's gateway retries before the first token: a pooled
    # connection the simulator closed while the floor sat idle is tried again, not a failed turn.
    client = openai.AsyncOpenAI(
        base_url=os.environ["FLOOR_UPSTREAM"], api_key=os.environ["SIMULATOR_API_KEY"]
    )
    application.state.client = client
    yield
    await client.close()


app = Starlette(
    routes=[Route("/readyz", ready), WebSocketRoute("/ws", relay)],
    lifespan=lifespan,
)
