import time

import openai
import pytest
from openai import OpenAI
from openai.types.responses import (
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from azure_sim.defaults import SimulatorConfig
from azure_sim.testing import SimulatorServer


def _deltas(events: list[ResponseStreamEvent]) -> list[ResponseTextDeltaEvent]:
    return [event for event in events if isinstance(event, ResponseTextDeltaEvent)]


def test_rate_limit_is_azures_429_with_retry_after_headers(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=rate_limit,retry_after_ms=2500"},
            input="Hi",
        )

    error = caught.value
    assert error.code == "429"
    assert error.type is None
    assert "Please retry after 3 seconds" in error.message
    assert error.response.headers["retry-after"] == "3"
    assert error.response.headers["retry-after-ms"] == "2500"


def test_rate_limit_with_times_fails_then_succeeds(client: OpenAI, server: SimulatorServer) -> None:
    request = {"model": "gpt-4.1", "input": "[[sim fault=rate_limit times=1]] Hi"}

    with pytest.raises(openai.RateLimitError):
        client.responses.create(**request)
    response = client.responses.create(**request)

    assert response.status == "completed"
    assert [entry["status"] for entry in server.requests(op="create")] == [429, 200]


def test_sdk_retries_after_the_advertised_delay(server: SimulatorServer) -> None:
    server.program_fault(fault="rate_limit", times=2, retry_after_ms=10)

    with OpenAI(base_url=server.openai_base_url, api_key=server.api_key, max_retries=2) as client:
        response = client.responses.create(model="gpt-4.1", input="Hi")

    assert response.status == "completed"
    assert [entry["status"] for entry in server.requests(op="create")] == [429, 429, 200]


def test_programmed_fault_matches_only_its_deployment(
    client: OpenAI, server: SimulatorServer
) -> None:
    server.program_fault(fault="server_error", model="o4-mini")

    assert client.responses.create(model="gpt-4.1", input="Hi").status == "completed"
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="o4-mini", input="Hi")
    assert client.responses.create(model="o4-mini", input="Hi").status == "completed"


def test_server_error_is_a_500(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(
            model="gpt-4.1", input="Hi", extra_headers={"x-simulator": "fault=server_error"}
        )

    assert caught.value.status_code == 500
    assert caught.value.code == "server_error"


def test_unavailable_is_a_503(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(
            model="gpt-4.1", extra_headers={"x-simulator": "fault=unavailable"}, input="Hi"
        )

    assert caught.value.status_code == 503


def test_stall_stops_sending_and_keeps_the_connection_open(client: OpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    stream = client.with_options(timeout=0.3).responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "fault=stall,after=3"},
        input="Hi",
        stream=True,
    )

    with pytest.raises(openai.APITimeoutError):
        received.extend(stream)

    assert len(_deltas(received)) == 3
    assert received[-1].type == "response.output_text.delta"


def test_cut_drops_the_stream_without_a_terminal_event(client: OpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    stream = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "fault=cut,after=4"}, input="Hi", stream=True
    )

    with pytest.raises(openai.APIConnectionError):
        received.extend(stream)

    assert len(_deltas(received)) == 4
    assert received[-1].type == "response.output_text.delta"


def test_a_cut_stream_is_stored_incomplete_with_the_text_sent(client: OpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    stream = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "fault=cut,after=3"}, input="Hi", stream=True
    )
    with pytest.raises(openai.APIConnectionError):
        received.extend(stream)

    stored = client.responses.retrieve(received[0].response.id)  # type: ignore[union-attr]

    assert stored.status == "incomplete"
    assert stored.output_text == "".join(event.delta for event in _deltas(received))


def test_cut_drops_a_non_streaming_reply(client: OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(
            model="gpt-4.1", extra_headers={"x-simulator": "fault=cut"}, input="Hi"
        )


def test_prompt_content_filter_is_azures_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=content_filter_prompt,category=violence"},
            input="Hi",
        )

    error = caught.value
    assert error.code == "content_filter"
    assert error.param == "prompt"
    assert isinstance(error.body, dict)
    results = error.body["innererror"]["content_filter_result"]
    assert error.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert results["violence"] == {"filtered": True, "severity": "high"}
    assert results["hate"] == {"filtered": False, "severity": "safe"}
    assert error.body["content_filters"][0]["source_type"] == "prompt"


def test_output_content_filter_ends_the_stream_incomplete(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=content_filter_output,after=6"},
            input="Hi",
            stream=True,
        )
    )

    incomplete = events[-1]
    assert isinstance(incomplete, ResponseIncompleteEvent)
    response = incomplete.response
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"
    assert response.output_text == "".join(event.delta for event in _deltas(events))
    assert len(_deltas(events)) == 6
    filters = (response.model_extra or {})["content_filters"]
    assert filters[0]["content_filter_results"]["hate"]["filtered"] is True


def test_failed_sends_response_failed(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=failed,after=2"},
            input="Hi",
            stream=True,
        )
    )

    failed = events[-1]
    assert isinstance(failed, ResponseFailedEvent)
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert client.responses.retrieve(failed.response.id).status == "failed"


def test_error_event_has_the_flat_shape(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=error_event,after=1"},
            input="Hi",
            stream=True,
        )
    )

    error = events[-1]
    assert isinstance(error, ResponseErrorEvent)
    assert error.code == "server_error"
    assert error.sequence_number == events[-2].sequence_number + 1
    assert len(_deltas(events)) == 1


def test_nested_error_event_makes_the_sdk_raise(client: OpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    stream = client.responses.create(
        model="gpt-4.1",
        extra_headers={"x-simulator": "fault=error_event_nested,after=2"},
        input="Hi",
        stream=True,
    )

    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)

    assert caught.value.body == {
        "type": "server_error",
        "code": "server_error",
        "message": "The server had an error while processing your request.",
        "param": None,
    }
    assert len(_deltas(received)) == 2


def test_error_event_without_streaming_is_a_500(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.responses.create(
            model="gpt-4.1", extra_headers={"x-simulator": "fault=error_event"}, input="Hi"
        )


def test_forget_loses_the_previous_response(client: OpenAI) -> None:
    first = client.responses.create(model="gpt-4.1", input="Hi")

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4.1",
            extra_headers={"x-simulator": "fault=forget"},
            input="Next",
            previous_response_id=first.id,
        )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id, extra_headers={"x-simulator": "fault=forget"})

    assert caught.value.code == "previous_response_not_found"
    assert client.responses.retrieve(first.id).id == first.id


def test_previous_response_not_found_status_is_configurable() -> None:
    with (
        SimulatorServer(
            SimulatorConfig(ttft_ms=0, tps=0, previous_response_not_found_status=404)
        ) as server,
        OpenAI(base_url=server.openai_base_url, api_key=server.api_key, max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.responses.create(model="gpt-4.1", input="Hi", previous_response_id="resp_gone")

    assert caught.value.code == "previous_response_not_found"


def test_context_too_long(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4.1", extra_headers={"x-simulator": "fault=context_too_long"}, input="Hi"
        )

    assert caught.value.code == "context_length_exceeded"


def test_programmed_delete_fault_then_delete_succeeds(
    client: OpenAI, server: SimulatorServer
) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hi")
    server.program_fault(op="delete", fault="rate_limit", retry_after_ms=4000)

    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.delete(created.id)
    client.responses.delete(created.id)

    assert caught.value.response.headers["retry-after"] == "4"
    assert "Responses_Delete" in caught.value.message
    assert [entry["status"] for entry in server.requests(op="delete")] == [429, 200]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_programmed_retrieve_stall(client: OpenAI, server: SimulatorServer) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hi")
    server.program_fault(op="retrieve", fault="stall")

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).responses.retrieve(created.id)

    assert client.responses.retrieve(created.id).id == created.id


def test_background_failure_is_seen_when_polling(client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "fault=failed"}, input="Hi", background=True
    )

    for _ in range(100):
        retrieved = client.responses.retrieve(created.id)
        if retrieved.status not in ("queued", "in_progress"):
            break
        time.sleep(0.01)

    assert retrieved.status == "failed"
    assert retrieved.error is not None
