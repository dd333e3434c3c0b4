from typing import get_args

from openai import AsyncOpenAI, OpenAI
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseReasoningItem,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from azure_sim.composing import count_tokens
from azure_sim.testing import SimulatorServer

STREAM_EVENT_CLASSES = get_args(get_args(ResponseStreamEvent)[0])

PLAIN_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def _collapse_deltas(types: list[str]) -> list[str]:
    return [kind for index, kind in enumerate(types) if index == 0 or kind != types[index - 1]]


def _check_stream(events: list[ResponseStreamEvent]) -> Response:
    assert all(isinstance(event, STREAM_EVENT_CLASSES) for event in events)
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    deltas = [event.delta for event in events if isinstance(event, ResponseTextDeltaEvent)]
    response = completed.response
    assert "".join(deltas) == response.output_text
    assert response.status == "completed"
    return response


def test_stream_has_every_event_in_order_and_the_deltas_make_the_text(client: OpenAI) -> None:
    events = list(client.responses.create(model="gpt-4.1", input="Explain quotas", stream=True))

    response = _check_stream(events)

    assert _collapse_deltas([event.type for event in events]) == PLAIN_SEQUENCE
    assert len(response.output_text.split()) > 150


def test_usage_is_consistent_with_the_text(client: OpenAI) -> None:
    events = list(client.responses.create(model="gpt-4.1", input="Explain quotas", stream=True))

    response = _check_stream(events)

    usage = response.usage
    assert usage is not None
    deltas = [event for event in events if isinstance(event, ResponseTextDeltaEvent)]
    assert usage.output_tokens == len(deltas)
    assert usage.output_tokens == count_tokens(response.output_text)
    assert usage.input_tokens == count_tokens("Explain quotas")
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_every_text_delta_carries_its_send_time(client: OpenAI) -> None:
    events = list(client.responses.create(model="gpt-4.1", input="Hello", stream=True))

    sent_at = [
        (event.model_extra or {})["sim_sent_at"]
        for event in events
        if isinstance(event, ResponseTextDeltaEvent)
    ]

    assert sent_at
    assert sent_at == sorted(sent_at)
    assert all(isinstance(moment, float) for moment in sent_at)


def test_strict_validation_accepts_every_event(server: SimulatorServer) -> None:
    with OpenAI(
        base_url=server.openai_base_url,
        api_key=server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    ) as strict:
        events = list(
            strict.responses.create(
                model="o4-mini", input="Hi", reasoning={"summary": "auto"}, stream=True
            )
        )
        response = _check_stream(events)
        again = strict.responses.retrieve(response.id)

    assert again.output_text == response.output_text


def test_stream_helper_gives_the_final_response(client: OpenAI) -> None:
    with client.responses.stream(model="gpt-4.1", input="Summarise retention") as stream:
        texts = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert final.status == "completed"
    assert "".join(texts) == final.output_text


async def test_async_stream(aclient: AsyncOpenAI) -> None:
    stream = await aclient.responses.create(model="gpt-4.1", input="Hello", stream=True)
    events = [event async for event in stream]

    response = _check_stream(events)

    assert response.model == "gpt-4.1"


async def test_async_stream_helper(aclient: AsyncOpenAI) -> None:
    async with aclient.responses.stream(model="gpt-4.1", input="Hello") as stream:
        final = await stream.get_final_response()

    assert final.output_text


def test_reasoning_model_streams_a_summary_before_the_text(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="o4-mini", input="Plan it", reasoning={"summary": "auto"}, stream=True
        )
    )

    response = _check_stream(events)
    types = _collapse_deltas([event.type for event in events])
    assert types[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
    ]
    summary = "".join(
        event.delta for event in events if isinstance(event, ResponseReasoningSummaryTextDeltaEvent)
    )
    reasoning = response.output[0]
    assert isinstance(reasoning, ResponseReasoningItem)
    assert reasoning.summary[0].text == summary
    assert response.output[1].type == "message"
    usage = response.usage
    assert usage is not None
    assert usage.output_tokens_details.reasoning_tokens > 0
    assert usage.output_tokens == usage.output_tokens_details.reasoning_tokens + count_tokens(
        response.output_text
    )


def test_reasoning_summary_only_when_asked_for(client: OpenAI) -> None:
    events = list(client.responses.create(model="gpt-5-mini", input="Plan it", stream=True))

    response = _check_stream(events)

    assert not any("reasoning_summary" in event.type for event in events)
    reasoning = response.output[0]
    assert isinstance(reasoning, ResponseReasoningItem)
    assert reasoning.summary == []
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens > 0


def test_chat_models_do_not_reason(client: OpenAI) -> None:
    response = client.responses.create(model="gpt-5-chat", input="Hi")

    assert [item.type for item in response.output] == ["message"]


def test_burst_sends_several_tokens_per_delta(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-4.1", extra_headers={"x-simulator": "burst=5"}, input="Hello", stream=True
        )
    )

    response = _check_stream(events)

    deltas = [event for event in events if isinstance(event, ResponseTextDeltaEvent)]
    assert response.usage is not None
    assert len(deltas) == -(-response.usage.output_tokens // 5)


def test_max_output_tokens_ends_incomplete(client: OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input="Hello", max_output_tokens=20)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens == 20
    assert response.output[0].status == "incomplete"
