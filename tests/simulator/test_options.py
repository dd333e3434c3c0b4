import httpx2
import openai
import pytest
from openai import OpenAI

from azure_sim.testing import SimulatorError, SimulatorServer

HOSTILE_MARKDOWN = (
    "# Title\n\n<script>alert('x')</script>\n\n"
    "[click](javascript:alert(1)) ![img](x onerror=alert(1))\n\n"
    "```html\n<img src=x onerror=alert(1)>\n```\n\n"
    "    indented code\n| a | b |\n|---|---|\n| <b>1</b> | 2 |"
)


def _words(response_text: str) -> int:
    return len(response_text.split())


def test_echo_returns_the_text_without_the_directive(client: OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input=f"[[sim echo]]\n{HOSTILE_MARKDOWN}")

    assert response.output_text == HOSTILE_MARKDOWN


def test_directive_in_the_middle_of_the_text_is_removed(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4.1", input="Keep this [[sim echo=true ttft_ms=0]]and this"
    )

    assert response.output_text == "Keep this and this"


def test_only_the_newest_user_text_carries_directives(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": "[[sim echo]] old"},
            {"role": "assistant", "content": "Answer."},
            {"role": "user", "content": "new [[sim words=5]]"},
        ],
    )

    assert _words(response.output_text) == 5


def test_options_are_layered_deployment_then_header_then_directive(
    client: OpenAI, server: SimulatorServer
) -> None:
    server.configure_deployment("gpt-4.1-ten", "words=10")
    from_deployment = client.responses.create(model="gpt-4.1-ten", input="Hi")
    from_header = client.responses.create(
        model="gpt-4.1-ten", input="Hi", extra_headers={"x-simulator": "words=20"}
    )
    from_directive = client.responses.create(
        model="gpt-4.1-ten",
        input="Hi [[sim words=30]]",
        extra_headers={"x-simulator": "words=20;echo=false"},
    )

    assert [_words(r.output_text) for r in (from_deployment, from_header, from_directive)] == [
        10,
        20,
        30,
    ]


def test_replies_are_deterministic_for_the_same_text(client: OpenAI) -> None:
    first = client.responses.create(model="gpt-4.1", input="Tell me about caching")
    second = client.responses.create(model="gpt-4.1", input="Tell me about caching")
    other = client.responses.create(model="gpt-4.1", input="Tell me about quotas")

    assert first.id != second.id
    assert first.output_text == second.output_text
    assert first.output_text != other.output_text


def test_words_sets_the_reply_length(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4.1", extra_headers={"x-simulator": "words=600"}, input="Hi"
    )

    assert 600 <= _words(response.output_text) < 700


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("colour=blue", "unknown simulator option 'colour'"),
        ("fault=explode", "unknown fault 'explode'"),
        ("tps=fast", "expected a number"),
        ("burst=0", "expected a number from 1"),
        ("category=rude", "unknown content filter category"),
        ("accept_ms=-1", "simulator option 'accept_ms' in the x-simulator header"),
        ("accept_ms=abc", "simulator option 'accept_ms' in the x-simulator header"),
    ],
)
def test_bad_options_are_refused(client: OpenAI, options: str, expected: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4.1", input="Hi", extra_headers={"x-simulator": options})

    assert caught.value.code == "invalid_simulator_option"
    assert expected in caught.value.message


def test_request_log_shows_what_the_app_sent(client: OpenAI, server: SimulatorServer) -> None:
    first = client.responses.create(model="gpt-4.1", input="One", instructions="Be kind.")
    client.responses.create(model="gpt-4.1", input="Two", previous_response_id=first.id)
    client.responses.retrieve(first.id)

    creates = server.requests(op="create")
    retrieves = server.requests(op="retrieve")

    assert [entry["json"]["input"] for entry in creates] == ["One", "Two"]
    assert creates[1]["json"]["previous_response_id"] == first.id
    assert "instructions" not in creates[1]["json"]
    assert creates[0]["headers"]["content-type"] == "application/json"
    assert "authorization" not in creates[0]["headers"]
    assert [entry["path"] for entry in retrieves] == [f"/openai/v1/responses/{first.id}"]
    assert len(server.requests()) == 3


def test_reset_forgets_responses_faults_and_log(client: OpenAI, server: SimulatorServer) -> None:
    created = client.responses.create(model="gpt-4.1", input="Hi")
    server.program_fault(fault="server_error")

    server.reset()

    assert server.requests() == []
    assert client.responses.create(model="gpt-4.1", input="Hi").status == "completed"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"fault": "explode"}, "unknown fault"),
        ({"op": "delete", "fault": "failed"}, "only while creating"),
        ({"op": "update", "fault": "rate_limit"}, "unknown op"),
        ({"fault": "rate_limit", "times": 0}, "times must be"),
        ({"fault": "rate_limit", "colour": "blue"}, "unknown simulator option"),
    ],
)
def test_control_api_refuses_bad_faults(
    server: SimulatorServer, spec: dict[str, object], expected: str
) -> None:
    with pytest.raises(SimulatorError, match=expected):
        server.program_fault(**spec)  # type: ignore[arg-type]


def test_control_api_lists_pending_faults(server: SimulatorServer) -> None:
    programmed = server.program_fault(op="retrieve", fault="unavailable", times=2)

    pending = httpx2.get(f"{server.base_url}/_simulator/faults").json()["data"]

    assert pending == [programmed]
    assert programmed["times"] == 2


def test_invalid_json_is_a_400_with_azures_error_shape(server: SimulatorServer) -> None:
    response = httpx2.post(
        f"{server.openai_base_url}responses",
        content=b"{not json",
        headers={"api-key": server.api_key, "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "param", "type"}
    assert server.requests(op="create")[0]["json"] is None


@pytest.mark.parametrize("model", ["My GPT deployment", "gpt\n4", "x" * 65, "@words=5"])
def test_names_that_cannot_be_deployments_are_not_found(client: OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=model, input="Hi")

    assert caught.value.code == "DeploymentNotFound"


def test_a_deployment_name_azure_would_refuse_is_not_found(client: OpenAI) -> None:
    """Options travel in the x-simulator header, a [[sim]] directive or the deployment's own
    settings; never in its name."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-4.1@words=5", input="Hi")
    assert caught.value.code == "DeploymentNotFound"


def test_a_deployments_options_are_checked_when_set(server: SimulatorServer) -> None:
    with pytest.raises(SimulatorError, match="unknown simulator option"):
        server.configure_deployment("gpt-4.1-odd", "colour=blue")
