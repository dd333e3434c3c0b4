"""``accept_ms``: a busy resource takes time to accept a create before it answers at all, while
the response it makes already exists (stored before its id was ever sent, as on Azure)."""

import asyncio
import time
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.responses import Response

from azure_sim.testing import SimulatorServer

# Longer than any test: the client leaves first.
FOREVER = "accept_ms=600000"


async def _waiting_create(
    aclient: AsyncOpenAI,
    server: SimulatorServer,
    options: str = "",
    *,
    stream: bool = False,
    background: bool = False,
) -> tuple[asyncio.Task[Any], str]:
    """A create still waiting to be accepted, and the id of the response it has already made
    (from the request log: the client has not been told it)."""
    create = asyncio.create_task(
        aclient.responses.create(
            model="gpt-4.1",
            input="Hi",
            stream=stream,
            background=background,
            extra_headers={"x-simulator": ",".join(filter(None, (FOREVER, options)))},
        )
    )
    for _ in range(500):
        creates = await asyncio.to_thread(server.requests, "create")
        if creates and creates[-1].get("response_id"):
            return create, str(creates[-1]["response_id"])
        await asyncio.sleep(0.01)
    raise AssertionError("no response was made")


async def _settled(aclient: AsyncOpenAI, response_id: str) -> Response:
    for _ in range(1500):
        response = await aclient.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        await asyncio.sleep(0.01)
    raise AssertionError(f"{response_id} is still running")


async def _with_text(aclient: AsyncOpenAI, response_id: str) -> Response:
    for _ in range(500):
        response = await aclient.responses.retrieve(response_id)
        if response.output_text:
            return response
        await asyncio.sleep(0.01)
    raise AssertionError(f"{response_id} has generated nothing")


async def _leave(create: asyncio.Task[Any]) -> None:
    """The client gives up on its create: the connection is closed."""
    create.cancel()
    with pytest.raises(asyncio.CancelledError):
        await create


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_nothing_is_answered_before_the_request_is_accepted(
    client: OpenAI, stream: bool, background: bool
) -> None:
    started = time.monotonic()
    answer: Any = client.responses.create(
        model="gpt-4.1",
        input="Hi",
        stream=stream,
        background=background,
        extra_headers={"x-simulator": "accept_ms=400"},
    )
    answered = time.monotonic() - started

    if stream:
        events = list(answer)
        assert events[0].type == "response.created"
        assert events[-1].type == "response.completed"
        response_id = events[0].response.id
    else:
        response_id = answer.id
    assert answered >= 0.4
    assert client.responses.retrieve(response_id).output_text


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_is_stored_before_its_id_is_sent_and_left_incomplete(
    aclient: AsyncOpenAI, server: SimulatorServer, stream: bool
) -> None:
    create, response_id = await _waiting_create(aclient, server, stream=stream)
    waiting = await aclient.responses.retrieve(response_id)

    await _leave(create)
    left = await _settled(aclient, response_id)

    assert waiting.status == "in_progress"
    assert waiting.output == []
    assert left.status == "incomplete"
    assert left.output_text == ""


@pytest.mark.parametrize("stream", [False, True])
async def test_a_background_response_goes_on_when_its_client_leaves_during_the_wait(
    aclient: AsyncOpenAI, server: SimulatorServer, stream: bool
) -> None:
    # A generation that is still running when the client leaves.
    create, response_id = await _waiting_create(
        aclient, server, "ttft_ms=0,tps=100,words=60", stream=stream, background=True
    )

    await _leave(create)
    done = await _settled(aclient, response_id)

    assert done.status == "completed"
    assert len(done.output_text.split()) == 60
    replay = [event async for event in await aclient.responses.retrieve(response_id, stream=True)]
    assert replay[-1].type == "response.completed"


async def test_a_background_response_left_during_the_wait_can_be_cancelled(
    aclient: AsyncOpenAI, server: SimulatorServer
) -> None:
    create, response_id = await _waiting_create(
        aclient, server, "ttft_ms=0,tps=20", background=True
    )
    await _leave(create)
    generating = await _with_text(aclient, response_id)

    cancelled = await aclient.responses.cancel(response_id)

    assert generating.status == "in_progress"
    assert cancelled.status == "cancelled"
    assert (await aclient.responses.retrieve(response_id)).status == "cancelled"
