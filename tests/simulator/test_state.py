import json
import time

import openai
import pytest
from openai import OpenAI
from openai.types.responses import ResponseOutputMessage

from azure_sim.composing import count_tokens
from azure_sim.testing import SimulatorServer


def test_non_streaming_create_then_retrieve(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hello", instructions="Be brief.")

    retrieved = client.responses.retrieve(created.id)

    assert created.status == "completed"
    assert created.id.startswith("resp_")
    assert created.instructions == "Be brief."
    assert retrieved.output_text == created.output_text
    assert retrieved.usage == created.usage


def test_delete_returns_azures_deletion_object_then_retrieve_is_not_found(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hello")

    raw = client.responses.with_raw_response.delete(created.id)

    assert raw.http_request.method == "DELETE"
    assert raw.status_code == 200
    assert json.loads(raw.text) == {"id": created.id, "object": "response.deleted", "deleted": True}
    assert raw.parse() is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_unknown_response_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_unknown")

    assert caught.value.body == {
        "code": None,
        "message": "Response with id 'resp_unknown' not found.",
        "param": None,
        "type": "invalid_request_error",
    }


def test_store_false_is_not_kept(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hello", store=False)

    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_expired_response_is_gone(client: OpenAI, server: SimulatorServer) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hello")

    server.expire(created.id)

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_chain_continues_from_the_stored_context(client: OpenAI) -> None:
    first = client.responses.create(model="gpt-4.1", input="My name is Ada.")
    second = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "recall"},
        input="What is my name?",
        previous_response_id=first.id,
    )

    assert second.previous_response_id == first.id
    assert second.output_text == "\n".join(
        ["user: My name is Ada.", f"assistant: {first.output_text}", "user: What is my name?"]
    )
    assert first.usage is not None
    assert second.usage is not None
    context = first.usage.input_tokens + first.usage.output_tokens
    assert second.usage.input_tokens_details.cached_tokens == context
    assert second.usage.input_tokens == context + count_tokens("What is my name?")


def test_instructions_are_not_inherited_through_the_chain(client: OpenAI) -> None:
    first = client.responses.create(
        model="gpt-4.1", input="Hello", instructions="Answer in French."
    )
    second = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "recall"},
        input="Again",
        previous_response_id=first.id,
    )
    third = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "recall"},
        input="Once more",
        previous_response_id=second.id,
        instructions="Answer in Danish.",
    )

    assert second.instructions is None
    assert "French" not in second.output_text
    assert third.output_text.startswith("instructions: Answer in Danish.")
    assert "French" not in third.output_text


@pytest.mark.parametrize("how", ["unknown", "deleted", "expired", "not_stored"])
def test_previous_response_not_found(client: OpenAI, server: SimulatorServer, how: str) -> None:
    previous_id = "resp_never_was"
    if how != "unknown":
        previous = client.responses.create(model="gpt-4.1", input="Hi", store=how != "not_stored")
        previous_id = previous.id
    if how == "deleted":
        client.responses.delete(previous_id)
    if how == "expired":
        server.expire(previous_id)

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4.1", input="Next", previous_response_id=previous_id)

    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert previous_id in caught.value.message


def test_input_items_lists_the_requests_input(client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "developer", "content": "Context."},
            {"role": "assistant", "content": "Earlier answer."},
            {"role": "user", "content": [{"type": "input_text", "text": "Question?"}]},
        ],
    )

    newest_first = client.responses.input_items.list(created.id)
    oldest_first = client.responses.input_items.list(created.id, order="asc", limit=2)

    assert [item.type for item in newest_first.data] == ["message"] * 3
    roles = [getattr(item, "role", None) for item in newest_first.data]
    assert roles == ["user", "assistant", "developer"]
    assert isinstance(newest_first.data[1], ResponseOutputMessage)
    assert [item.id for item in oldest_first.data] == [item.id for item in newest_first.data][:0:-1]
    assert oldest_first.has_more is True
    everything = list(client.responses.input_items.list(created.id, order="asc", limit=1))
    assert len(everything) == 3


def _wait_until_done(client: OpenAI, response_id: str) -> list[str]:
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = client.responses.retrieve(response_id).status
        assert status is not None
        statuses.append(status)
        if status not in ("queued", "in_progress"):
            return statuses
        time.sleep(0.02)
    raise AssertionError(f"still running: {statuses}")


def test_background_response_is_polled_to_completion(client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "ttft_ms=100,tps=2000"},
        input="Hello",
        background=True,
    )

    statuses = _wait_until_done(client, created.id)

    assert created.status == "queued"
    assert created.background is True
    assert "in_progress" in statuses
    assert statuses[-1] == "completed"
    assert client.responses.retrieve(created.id).output_text


def test_background_response_can_be_cancelled(client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "tps=50"}, input="Hello", background=True
    )

    cancelled = client.responses.cancel(created.id)

    assert cancelled.status == "cancelled"
    time.sleep(0.1)
    assert client.responses.retrieve(created.id).status == "cancelled"


def test_only_background_responses_can_be_cancelled(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hello")

    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(created.id)


def test_background_stream_is_replayed_after_a_sequence_number(client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "tps=3000"}, input="Hello", background=True
    )

    replay = list(client.responses.retrieve(created.id, stream=True, starting_after=4))

    assert replay[0].sequence_number == 5
    numbers = [event.sequence_number for event in replay]
    assert numbers == list(range(5, 5 + len(replay)))
    assert replay[-1].type == "response.completed"
    full = list(client.responses.retrieve(created.id, stream=True))
    assert [event.type for event in full[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert full[5:] == replay
