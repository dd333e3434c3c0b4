import httpx2
import openai
import pytest
from openai import OpenAI

from azure_sim.app import create_app
from azure_sim.defaults import SimulatorConfig
from azure_sim.refusals import ACCESS_DENIED
from azure_sim.testing import FAST, SimulatorServer
from tests.simulator_fixtures import FAKE_ENTRA_TOKEN

AZURE_HEADERS = ("x-request-id", "apim-request-id", "x-ms-region", "x-ms-deployment-name")
ACCESS_DENIED_BODY = {
    "error": {"code": "401", "message": ACCESS_DENIED, "param": None, "type": None}
}


def _create(server: SimulatorServer, headers: dict[str, str]) -> httpx2.Response:
    return httpx2.post(
        f"{server.openai_base_url}responses",
        json={"model": "gpt-4.1", "input": "Hi"},
        headers=headers,
    )


def test_api_key_header_is_accepted(server: SimulatorServer) -> None:
    response = _create(server, {"api-key": server.api_key})

    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert server.requests(op="create")[0]["auth"] == "api-key"


def test_an_entra_shaped_token_is_accepted_by_default(server: SimulatorServer) -> None:
    with OpenAI(base_url=server.openai_base_url, api_key=lambda: FAKE_ENTRA_TOKEN) as client:
        response = client.responses.create(model="gpt-4.1", input="Hi")

    assert response.status == "completed"
    logged = server.requests(op="create")[0]
    assert logged["auth"] == "bearer"
    assert "authorization" not in logged["headers"]


@pytest.mark.parametrize(
    "wrong", ["sk-a-wrong-key", "abc.def", "a.b.c", "eyJub3QiOiJhIGhlYWRlciJ9.e30.c2ln"]
)
def test_a_wrong_key_as_a_bearer_token_is_refused(server: SimulatorServer, wrong: str) -> None:
    """What the app sends for an API key deployment: a wrong key fails as it does on Azure."""
    assert _create(server, {"authorization": f"Bearer {wrong}"}).status_code == 401
    assert _create(server, {"authorization": f"Bearer {server.api_key}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"api-key": "wrong"}, {"authorization": "Bearer"}, {"authorization": "Basic abc"}],
)
def test_missing_or_wrong_credentials_get_azures_401(
    server: SimulatorServer, headers: dict[str, str]
) -> None:
    response = _create(server, headers)

    assert response.status_code == 401
    assert response.json() == ACCESS_DENIED_BODY


def test_a_wrong_api_key_wins_over_a_bearer_token(server: SimulatorServer) -> None:
    with (
        OpenAI(
            base_url=server.openai_base_url,
            api_key="token",
            default_headers={"api-key": "wrong"},
            max_retries=0,
        ) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.responses.create(model="gpt-4.1", input="Hi")

    assert caught.value.body == ACCESS_DENIED_BODY["error"]


def test_a_wrong_key_can_be_echoed_as_openais_own_api_does() -> None:
    config = SimulatorConfig(api_keys=("k1",), accept_entra_tokens=False, echo_wrong_key=True)
    with SimulatorServer(config) as echoing:
        bearer = _create(echoing, {"authorization": "Bearer sk-wrong-1234"})
        header = _create(echoing, {"api-key": "wrong-5678"})
        missing = _create(echoing, {})

    assert bearer.status_code == header.status_code == missing.status_code == 401
    assert bearer.json()["error"]["code"] == "invalid_api_key"
    assert "Incorrect API key provided: sk-wrong-1234." in bearer.json()["error"]["message"]
    assert "Incorrect API key provided: wrong-5678." in header.json()["error"]["message"]
    assert missing.json() == ACCESS_DENIED_BODY


def test_strict_bearer_accepts_only_the_keys() -> None:
    config = SimulatorConfig(ttft_ms=0, tps=0, api_keys=("k1",), accept_entra_tokens=False)
    with SimulatorServer(config) as strict:
        assert _create(strict, {"authorization": "Bearer other"}).status_code == 401
        assert _create(strict, {"authorization": "Bearer k1"}).status_code == 200
        assert _create(strict, {"api-key": "k1"}).status_code == 200


@pytest.mark.parametrize("path", ["responses", "responses/resp_x", "nothing/here"])
def test_azure_headers_are_on_every_reply(server: SimulatorServer, path: str) -> None:
    response = httpx2.get(f"{server.openai_base_url}{path}", headers={"api-key": "sim-key"})

    assert response.status_code in (404, 405)
    assert all(response.headers.get(name) is not None for name in AZURE_HEADERS)
    assert response.headers["x-ms-region"] == FAST.region
    assert set(response.json()["error"]) == {"code", "message", "param", "type"}


def test_deployment_header_names_the_deployment(client: OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="gpt-4.1", extra_headers={"x-simulator": "words=5"}, input="Hi"
    )

    assert raw.headers["x-ms-deployment-name"] == "gpt-4.1"
    assert raw.headers["x-request-id"] != raw.headers["apim-request-id"]
    assert raw.parse().model == "gpt-4.1"


def test_control_api_needs_no_credentials(server: SimulatorServer) -> None:
    response = httpx2.get(f"{server.base_url}/_simulator/health")

    assert response.json() == {"status": "ok"}


async def test_control_api_refuses_clients_beyond_loopback() -> None:
    app = create_app()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/_simulator/reset",
        "query_string": b"",
        "headers": [],
        "client": ("10.0.0.7", 50000),
    }
    await app(scope, receive, send)

    assert sent[0]["status"] == 403
