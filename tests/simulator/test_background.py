"""Background mode with streaming: numbered events, a generation that outlives its connection,
a replay after any sequence number that follows the live events, and cancel."""

import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from azure_sim.testing import SimulatorServer


def _text(events: list[object]) -> str:
    return "".join(getattr(event, "delta", "") for event in events if _is_delta(event))


def _is_delta(event: object) -> bool:
    return getattr(event, "type", "") == "response.output_text.delta"


def _wait_for_status(client: OpenAI, response_id: str) -> str:
    for _ in range(500):
        status = client.responses.retrieve(response_id).status or ""
        if status not in ("queued", "in_progress"):
            return status
        time.sleep(0.01)
    raise AssertionError("still running")


def test_a_background_stream_is_numbered_and_ends_completed(client: OpenAI) -> None:
    events: list[Any] = list(
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "ttft_ms=0,tps=0"},
            input="Hello",
            background=True,
            stream=True,
        )
    )

    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [event.type for event in events[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert events[0].response.background is True
    assert events[-1].type == "response.completed"
    assert _text(events) == client.responses.retrieve(events[0].response.id).output_text


def test_a_background_response_goes_on_after_its_client_leaves(client: OpenAI) -> None:
    stream = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "ttft_ms=0,tps=400"},
        input="Hello",
        background=True,
        stream=True,
    )
    seen: list[Any] = []
    for event in stream:
        seen.append(event)
        if sum(map(_is_delta, seen)) == 3:
            break
    stream.close()
    response_id = seen[0].response.id

    assert _wait_for_status(client, response_id) == "completed"
    rest: list[Any] = list(
        client.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
    )
    assert rest[0].sequence_number == seen[-1].sequence_number + 1
    assert _text(seen) + _text(rest) == client.responses.retrieve(response_id).output_text


def test_a_cut_line_loses_nothing_when_the_stream_is_resumed(client: OpenAI) -> None:
    stream = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "ttft_ms=0,tps=2000"},
        input="[[sim fault=cut after=4]] Hello",
        background=True,
        stream=True,
    )
    seen: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        seen.extend(stream)
    response_id = seen[0].response.id

    rest: list[Any] = list(
        client.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
    )

    assert sum(map(_is_delta, seen)) == 4
    numbers = [event.sequence_number for event in seen + rest]
    assert numbers == list(range(len(numbers)))
    assert rest[-1].type == "response.completed"
    assert _text(seen) + _text(rest) == client.responses.retrieve(response_id).output_text


def test_a_replay_follows_the_live_events_until_the_end(client: OpenAI) -> None:
    stream = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "ttft_ms=0,tps=300"},
        input="Hello",
        background=True,
        stream=True,
    )
    created: Any = next(iter(stream))
    stream.close()

    replay: list[Any] = list(
        client.responses.retrieve(created.response.id, stream=True, starting_after=0)
    )

    assert replay[0].sequence_number == 1
    assert replay[-1].type == "response.completed"
    assert _text(replay) == client.responses.retrieve(created.response.id).output_text


def test_cancel_stops_a_background_stream(client: OpenAI, server: SimulatorServer) -> None:
    stream = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "ttft_ms=0,tps=50"},
        input="Hello",
        background=True,
        stream=True,
    )
    seen: list[Any] = []
    for event in stream:
        seen.append(event)
        if _is_delta(event):
            cancelled = client.responses.cancel(seen[0].response.id)
            break
    rest: list[Any] = list(stream)

    assert cancelled.status == "cancelled"
    assert not any(event.type == "response.completed" for event in rest)
    retrieved = client.responses.retrieve(seen[0].response.id)
    assert retrieved.status == "cancelled"
    assert len(retrieved.output_text) < 200
