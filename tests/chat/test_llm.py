"""The gateway against the real simulator, over HTTP, through the official SDK."""

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from azure_sim.testing import SimulatorServer
from chat import llm
from chat.llm import (
    Completed,
    ErrorKind,
    Failed,
    Incomplete,
    ReasoningDelta,
    Requesting,
    Retrying,
    Started,
    StreamEvent,
    TextDelta,
)
from chat.models import Deployment
from tests.simulator_fixtures import FAKE_ENTRA_TOKEN, SIMULATOR_KEY_ENV, FakeEntraCredential

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await llm.aclose_clients()


@pytest.fixture(autouse=True)
def quick_retries(settings: Any) -> None:
    settings.LLM_MAX_RETRIES = 2
    # Short enough for fast tests, longer than the simulator's programmed retry_after_ms=20.
    settings.LLM_MAX_RETRY_WAIT = 0.1


async def collect(deployment: Deployment, **overrides: Any) -> list[StreamEvent]:
    params: dict[str, Any] = {
        "input": "Hello there",
        "previous_response_id": None,
        "instructions": "Answer briefly.",
        "store": True,
    }
    params.update(overrides)
    return [event async for event in llm.stream_reply(deployment, **params)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def failure(events: list[StreamEvent]) -> llm.LLMError:
    terminal = events[-1]
    assert isinstance(terminal, Failed), terminal
    return terminal.error


def terminals(events: list[StreamEvent]) -> list[StreamEvent]:
    return [e for e in events if isinstance(e, Completed | Incomplete | Failed)]


# --- A whole turn -------------------------------------------------------------------------------


async def test_stream_yields_started_deltas_and_one_completed(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    events = await collect(sim_deployment)

    requesting, started, *deltas, completed = events
    assert isinstance(requesting, Requesting)
    assert isinstance(started, Started)
    assert deltas
    assert all(isinstance(event, TextDelta) for event in deltas)
    assert isinstance(completed, Completed)
    assert terminals(events) == [completed]
    assert completed.response_id == started.response_id
    assert completed.response_id.startswith("resp")
    assert completed.region == started.region == "swedencentral"
    assert completed.request_id
    assert completed.request_id == started.request_id
    assert completed.usage.input_tokens > 0
    assert completed.usage.output_tokens > 0
    assert len(text_of(events).split()) > 3
    stored = await llm.retrieve_response(sim_deployment, completed.response_id)
    assert stored is not None
    assert stored.output_text == text_of(events)


async def test_request_carries_model_instructions_store_and_limit(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    await collect(sim_deployment, store=False, max_output_tokens=64)

    (request,) = clean_simulator.requests(op="create")
    sent = request["json"]
    assert sent["model"] == sim_deployment.deployment_name
    assert sent["instructions"] == "Answer briefly."
    assert sent["input"] == "Hello there"
    assert sent["store"] is False
    assert sent["stream"] is True
    assert sent["max_output_tokens"] == 64
    assert "tools" not in sent
    assert "previous_response_id" not in sent
    assert request["auth"] == "bearer"


async def test_max_output_tokens_below_sixteen_is_refused(sim_deployment: Deployment) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        await collect(sim_deployment, max_output_tokens=8)


async def test_reasoning_model_streams_reasoning_before_text(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]], clean_simulator: SimulatorServer
) -> None:
    deployment = await amake_sim_deployment(model="gpt-5")

    events = await collect(deployment)

    kinds = [type(event) for event in events]
    assert ReasoningDelta in kinds
    assert kinds.index(ReasoningDelta) < kinds.index(TextDelta)
    assert isinstance(events[-1], Completed)
    assert events[-1].usage.reasoning_tokens > 0
    assert clean_simulator.requests(op="create")[0]["json"]["reasoning"] == {"summary": "auto"}


async def test_a_stateless_reasoning_turn_brings_its_sealed_reasoning_back(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]], clean_simulator: SimulatorServer
) -> None:
    deployment = await amake_sim_deployment(model="o4-mini")

    events = await collect(deployment, store=False, reasoning_effort="high")

    (item,) = [event.item for event in events if isinstance(event, llm.ReasoningItem)]
    assert item["type"] == "reasoning"
    assert item["encrypted_content"]
    sent = clean_simulator.requests(op="create")[0]["json"]
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert sent["reasoning"] == {"summary": "auto", "effort": "high"}

    history = [
        {"role": "user", "content": "Hello there"},
        item,
        {"role": "assistant", "content": text_of(events)},
        {"role": "user", "content": "And then?"},
    ]
    again = await collect(deployment, store=False, input=history)
    assert isinstance(again[-1], Completed), "the sealed item goes back verbatim and verifies"


async def test_a_stored_reasoning_turn_asks_for_no_sealed_reasoning(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]], clean_simulator: SimulatorServer
) -> None:
    deployment = await amake_sim_deployment(model="o4-mini")
    events = await collect(deployment, store=True)
    assert not [event for event in events if isinstance(event, llm.ReasoningItem)]
    assert "include" not in clean_simulator.requests(op="create")[0]["json"]


async def test_chained_turn_sends_previous_response_id_and_instructions_again(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    first = await collect(sim_deployment, input="My name is Ada.")
    first_id = first[-1].response_id  # type: ignore[union-attr]

    second = await collect(sim_deployment, input="What is my name?", previous_response_id=first_id)

    assert isinstance(second[-1], Completed)
    assert second[-1].response_id != first_id
    first_request, second_request = clean_simulator.requests(op="create")
    assert second_request["json"]["previous_response_id"] == first_id
    assert second_request["json"]["input"] == "What is my name?"
    assert first_request["json"]["instructions"] == "Answer briefly."
    assert second_request["json"]["instructions"] == "Answer briefly."


async def test_history_list_is_sent_as_input_items(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]

    events = await collect(sim_deployment, input=history, store=False)

    assert isinstance(events[-1], Completed)
    (request,) = clean_simulator.requests(op="create")
    assert request["json"]["input"] == history
    assert request["json"]["store"] is False


# --- Faults ------------------------------------------------------------------------------------


async def test_rate_limit_longer_than_allowed_wait_fails_at_once_with_the_wait(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="rate_limit", retry_after_ms=12000, times=5)

    events = await collect(sim_deployment)

    error = failure(events)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.status == 429
    assert error.retry_after == 12
    assert error.message == "The model is busy right now (rate limited). Try again in 12 seconds."
    assert len(clean_simulator.requests(op="create")) == 1


async def test_rate_limit_before_first_token_is_retried_after_the_wait(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="rate_limit", retry_after_ms=20, times=1)

    events = await collect(sim_deployment)

    assert isinstance(events[-1], Completed)
    assert text_of(events)
    assert [type(e) for e in events].count(Started) == 1
    assert len(clean_simulator.requests(op="create")) == 2


async def test_repeated_rate_limits_stop_after_the_retry_bound(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.LLM_MAX_RETRIES = 2
    clean_simulator.program_fault(fault="rate_limit", retry_after_ms=10, times=10)

    events = await collect(sim_deployment)

    # Each request announced, each refusal followed by its wait; nothing else until the end.
    retrying = [Requesting(), Retrying(0.01)]
    assert events == [*retrying, *retrying, Requesting(), events[-1]]
    assert failure(events).kind is ErrorKind.RATE_LIMITED
    assert len(clean_simulator.requests(op="create")) == 3


@pytest.mark.parametrize(("fault", "status"), [("server_error", 500), ("unavailable", 503)])
async def test_server_errors_are_upstream_unavailable(
    sim_deployment: Deployment,
    clean_simulator: SimulatorServer,
    settings: Any,
    fault: str,
    status: int,
) -> None:
    settings.LLM_MAX_RETRIES = 0
    clean_simulator.program_fault(fault=fault)

    error = failure(await collect(sim_deployment))

    assert error.kind is ErrorKind.UNAVAILABLE
    assert error.status == status
    assert error.request_id


async def test_server_error_before_first_token_is_retried(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="unavailable", times=1)

    events = await collect(sim_deployment)

    assert isinstance(events[-1], Completed)
    assert len(clean_simulator.requests(op="create")) == 2


async def test_stall_past_the_read_timeout_drops_the_stream(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_simulator: SimulatorServer,
    settings: Any,
) -> None:
    settings.LLM_READ_TIMEOUT = 0.3
    deployment = await amake_sim_deployment(options="fault=stall,after=2")

    events = await collect(deployment)

    assert len([e for e in events if isinstance(e, TextDelta)]) == 2
    error = failure(events)
    assert error.kind is ErrorKind.STREAM_DROPPED
    assert "stalled" in error.detail
    assert len(clean_simulator.requests(op="create")) == 1


async def test_cut_after_text_drops_the_stream_without_retry(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]], clean_simulator: SimulatorServer
) -> None:
    deployment = await amake_sim_deployment(options="fault=cut,after=3")

    events = await collect(deployment)

    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert failure(events).kind is ErrorKind.STREAM_DROPPED
    assert terminals(events) == [events[-1]]
    assert len(clean_simulator.requests(op="create")) == 1


async def test_cut_before_any_text_is_retried(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="cut", after=0, times=1)

    events = await collect(sim_deployment)

    assert isinstance(events[-1], Completed)
    assert len(clean_simulator.requests(op="create")) == 2


async def test_failure_before_any_text_is_retried_with_a_new_start(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="failed", after=0, times=1)

    events = await collect(sim_deployment)

    first, second = [event for event in events if isinstance(event, Started)]
    assert first.response_id != second.response_id
    assert isinstance(events[-1], Completed)
    assert events[-1].response_id == second.response_id
    assert terminals(events) == [events[-1]]


async def test_closing_the_stream_early_leaves_the_client_usable(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
) -> None:
    deployment = await amake_sim_deployment(options="ttft_ms=0,tps=200,words=400")
    stream = llm.stream_reply(
        deployment, input="Hi", previous_response_id=None, instructions="", store=False
    )
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()

    events = await collect(deployment, input="[[sim words=5]] Again")

    assert isinstance(events[-1], Completed)


async def test_prompt_content_filter_names_the_category(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="content_filter_prompt", category="violence")

    error = failure(await collect(sim_deployment))

    assert error.kind is ErrorKind.CONTENT_FILTERED
    assert error.status == 400
    assert error.categories == ("violence",)
    assert "content filter (violence)" in error.message
    assert len(clean_simulator.requests(op="create")) == 1


async def test_output_content_filter_ends_incomplete(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
) -> None:
    deployment = await amake_sim_deployment(
        options="fault=content_filter_output,after=2,category=hate"
    )

    events = await collect(deployment)

    terminal = events[-1]
    assert isinstance(terminal, Incomplete)
    assert terminal.reason == "content_filter"
    assert terminal.error is not None
    assert terminal.error.kind is ErrorKind.CONTENT_FILTERED
    assert terminal.error.categories == ("hate",)
    assert "(hate)" in terminal.error.message
    assert terminal.response_id


@pytest.mark.parametrize("fault", ["failed", "error_event", "error_event_nested"])
async def test_failure_events_mid_stream_end_in_failed(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_simulator: SimulatorServer,
    fault: str,
) -> None:
    deployment = await amake_sim_deployment(options=f"fault={fault},after=2")

    events = await collect(deployment)

    assert len([e for e in events if isinstance(e, TextDelta)]) == 2
    error = failure(events)
    assert error.kind is ErrorKind.UNAVAILABLE
    assert "server_error" in error.detail
    assert terminals(events) == [events[-1]]
    assert len(clean_simulator.requests(op="create")) == 1


async def test_forgotten_previous_response_is_reported_not_retried(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="forget", times=3)

    events = await collect(sim_deployment, previous_response_id="resp_gone")

    assert failure(events).kind is ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
    assert len(clean_simulator.requests(op="create")) == 1


async def test_expired_previous_response_is_not_found(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    first = await collect(sim_deployment)
    clean_simulator.expire(first[-1].response_id)  # type: ignore[union-attr]

    events = await collect(sim_deployment, previous_response_id=first[-1].response_id)  # type: ignore[union-attr]

    assert failure(events).kind is ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND


async def test_context_too_long(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="context_too_long")

    error = failure(await collect(sim_deployment))

    assert error.kind is ErrorKind.CONTEXT_TOO_LONG
    assert "too long" in error.message


@pytest.mark.parametrize("strict", [False, True], ids=["default simulator", "strict simulator"])
async def test_wrong_key_is_an_auth_failure_without_the_key(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_simulator: SimulatorServer,
    clean_strict_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    strict: bool,
) -> None:
    """The default simulator (the one `make run` starts) refuses a wrong key as Azure does."""
    server = clean_strict_simulator if strict else clean_simulator
    monkeypatch.setenv(SIMULATOR_KEY_ENV, "sk-wrong-key-0123456789")
    deployment = await amake_sim_deployment(server=server)

    error = failure(await collect(deployment))

    assert error.kind is ErrorKind.AUTH_FAILED
    assert error.status == 401
    assert error.message == (
        "The deployment rejected the app's credentials. Please contact an administrator."
    )
    assert "sk-wrong-key" not in repr(error)
    assert len(server.requests(op="create")) == 1


async def test_missing_key_variable_is_an_auth_failure_naming_the_variable(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = await amake_sim_deployment(api_key_env="NO_SUCH_API_KEY")
    monkeypatch.delenv("NO_SUCH_API_KEY", raising=False)

    error = failure(await collect(deployment))

    assert error.kind is ErrorKind.AUTH_FAILED
    assert "environment variable" in error.message
    assert "NO_SUCH_API_KEY is not set" in error.detail
    assert clean_simulator.requests() == []


async def test_a_key_variable_naming_the_apps_own_secret_is_never_read(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database_url = "postgres://chat:database-password-9f2c@db:5432/chat"
    monkeypatch.setenv("DATABASE_URL", database_url)
    deployment = await amake_sim_deployment(api_key_env="DATABASE_URL")

    error = failure(await collect(deployment))

    assert error.kind is ErrorKind.AUTH_FAILED
    assert "may not use this deployment's key variable" in error.message
    assert "DATABASE_URL is one of the app's own settings" in error.detail
    assert "database-password-9f2c" not in repr(error)
    assert clean_simulator.requests() == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_unavailable_after_retries(
    sim_deployment: Deployment, settings: Any
) -> None:
    settings.LLM_MAX_RETRY_WAIT = 0.05
    sim_deployment.endpoint = f"http://127.0.0.1:{_closed_port()}"
    await sim_deployment.asave()

    error = failure(await collect(sim_deployment))

    assert error.kind is ErrorKind.UNAVAILABLE
    assert "connection" in error.detail.lower()


async def test_request_timeout_bounds_the_whole_reply(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]], settings: Any
) -> None:
    settings.LLM_REQUEST_TIMEOUT = 0.2
    deployment = await amake_sim_deployment(options="ttft_ms=0,tps=40,words=200")

    events = await collect(deployment)

    assert text_of(events)
    assert failure(events).kind is ErrorKind.TIMEOUT


# --- Entra ID and clients -------------------------------------------------------------------


async def test_entra_id_sends_the_credentials_bearer_token(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_strict_simulator: SimulatorServer,
    fake_entra_credential: FakeEntraCredential,
    settings: Any,
) -> None:
    deployment = await amake_sim_deployment(
        server=clean_strict_simulator,
        auth_mode=Deployment.AuthMode.ENTRA_ID,
        api_key_env="",
        managed_identity_client_id="11111111-2222-3333-4444-555555555555",
    )

    events = await collect(deployment)

    # The strict simulator accepts no bearer token but FAKE_ENTRA_TOKEN (and its own key).
    assert isinstance(events[-1], Completed)
    assert clean_strict_simulator.requests(op="create")[0]["auth"] == "bearer"
    assert fake_entra_credential.scopes == [settings.AZURE_OPENAI_TOKEN_SCOPE]
    assert fake_entra_credential.deployments == [deployment]
    await llm.aclose_clients()
    assert fake_entra_credential.closed


async def test_wrong_entra_token_is_an_auth_failure(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
    clean_strict_simulator: SimulatorServer,
    fake_entra_credential: FakeEntraCredential,
) -> None:
    fake_entra_credential.token = "not-" + FAKE_ENTRA_TOKEN
    deployment = await amake_sim_deployment(
        server=clean_strict_simulator, auth_mode=Deployment.AuthMode.ENTRA_ID
    )

    assert failure(await collect(deployment)).kind is ErrorKind.AUTH_FAILED


async def test_client_is_cached_and_rebuilt_when_the_deployment_changes(
    sim_deployment: Deployment,
) -> None:
    await collect(sim_deployment)
    first = llm.clients.sdk_cached(sim_deployment.pk)
    assert first is not None
    await collect(sim_deployment)
    assert llm.clients.sdk_cached(sim_deployment.pk) is first

    sim_deployment.default_instructions = "Changed by an administrator."
    await sim_deployment.asave()
    stale_copy = await Deployment.objects.aget(pk=sim_deployment.pk)
    await collect(sim_deployment)

    second = llm.clients.sdk_cached(sim_deployment.pk)
    assert second is not None
    assert second is not first
    assert not first.is_closed(), "a request still using the old client is not cut off"
    assert second._client is first._client, "both share the loop's connection pool"
    await collect(stale_copy)
    assert llm.clients.sdk_cached(sim_deployment.pk) is second


async def test_every_deployment_shares_one_connection_pool_closed_at_shutdown(
    amake_sim_deployment: Callable[..., Awaitable[Deployment]],
) -> None:
    one, two = await amake_sim_deployment(), await amake_sim_deployment()
    await collect(one)
    await collect(two)
    first, second = llm.clients.sdk_cached(one.pk), llm.clients.sdk_cached(two.pk)
    assert first is not None
    assert second is not None
    assert first._client is second._client

    await llm.aclose_clients()
    assert first.is_closed()
    assert llm.clients.sdk_cached(one.pk) is None


# --- Other requests -------------------------------------------------------------------------


async def test_retrieve_delete_and_retrieve_again(sim_deployment: Deployment) -> None:
    events = await collect(sim_deployment)
    response_id = events[-1].response_id  # type: ignore[union-attr]

    stored = await llm.retrieve_response(sim_deployment, response_id)
    assert stored is not None
    assert stored.response_id == response_id
    assert stored.status == "completed"
    assert stored.usage.output_tokens > 0

    assert await llm.delete_response(sim_deployment, response_id) is True
    assert await llm.retrieve_response(sim_deployment, response_id) is None
    # Deleting again (404) counts as already deleted.
    assert await llm.delete_response(sim_deployment, response_id) is True


async def test_delete_failure_raises_a_classified_error(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(op="delete", fault="server_error")

    with pytest.raises(llm.LLMRequestError) as raised:
        await llm.delete_response(sim_deployment, "resp_anything")

    assert raised.value.error.kind is ErrorKind.UNAVAILABLE
    assert raised.value.error.status == 500


async def test_cancel_of_unknown_response_is_false(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    assert await llm.cancel_response(sim_deployment, "resp_unknown") is False
    assert clean_simulator.requests(op="cancel")


async def test_cancel_background_response(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    # Only background responses can be cancelled; the app never starts one, so make it here.
    async with llm.sdk_client(sim_deployment) as client:
        created = await client.responses.create(
            model=sim_deployment.deployment_name,
            extra_headers={"x-simulator": "tps=5"},
            input="Write a long story.",
            background=True,
        )

    assert await llm.cancel_response(sim_deployment, created.id) is True
    stored = await llm.retrieve_response(sim_deployment, created.id)
    assert stored is not None
    assert stored.status == "cancelled"


async def test_test_connection_reports_latency_region_and_model(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    report = await llm.test_connection(sim_deployment)

    assert report.ok
    assert report.error is None
    assert report.region == "swedencentral"
    assert report.model.startswith("gpt-4.1")
    assert report.latency_ms >= 0
    assert report.request_id
    (request,) = clean_simulator.requests(op="create")
    assert request["json"]["max_output_tokens"] == 16
    assert request["json"]["store"] is False


async def test_test_connection_reports_the_classified_error(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="rate_limit", retry_after_ms=3000)

    report = await llm.test_connection(sim_deployment)

    assert not report.ok
    assert report.error is not None
    assert report.error.kind is ErrorKind.RATE_LIMITED
    assert report.error.retry_after == 3


async def test_test_connection_works_for_an_unsaved_deployment(
    sim_deployment: Deployment,
) -> None:
    unsaved = Deployment(
        name="Not saved",
        endpoint=sim_deployment.endpoint,
        region="swedencentral",
        deployment_name=sim_deployment.deployment_name,
        model="gpt-4.1",
        api_key_env=SIMULATOR_KEY_ENV,
    )

    report = await llm.test_connection(unsaved)

    assert report.ok
    assert llm.clients.sdk_cached(sim_deployment.pk) is None, "nothing cached for it"


# --- Classification without a server --------------------------------------------------------


def test_retry_after_http_date_and_message_hint() -> None:
    error = llm.classify_error(
        {"code": "429", "message": "Please retry after 7 seconds."}, status=429
    )
    assert error.retry_after == 7
    assert error.message.endswith("Try again in 7 seconds.")


def test_unknown_status_codes_fall_back_on_the_status() -> None:
    assert llm.classify_error({"code": "Whatever"}, status=403).kind is ErrorKind.AUTH_FAILED
    assert llm.classify_error({"code": "Whatever"}, status=422).kind is ErrorKind.BAD_REQUEST
    assert llm.classify_error({"code": "insufficient_quota"}, status=429).kind is (
        ErrorKind.QUOTA_EXCEEDED
    )


def test_detail_never_carries_bearer_tokens() -> None:
    error = llm.classify_error(
        {"code": "401", "message": "Authorization: Bearer abc.def.ghi was refused"}, status=401
    )
    assert "abc.def.ghi" not in error.detail
