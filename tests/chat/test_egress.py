"""The model client's connections, checked on the address it dials: the real SDK, a real
simulator on 127.0.0.1, real name resolution."""

import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from azure_sim.testing import SimulatorServer
from chat import llm
from chat.egress import EgressRefused, GuardedBackend, GuardedTransport, address_refusal, refusal_in
from chat.llm import ErrorKind, Failed
from chat.models import Deployment
from chat.validators import validate_endpoint

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED_MESSAGE = (
    "The app may not connect to this deployment's endpoint. Please contact an administrator."
)


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await llm.aclose_clients()


def guarded_sdk(server: SimulatorServer, host: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"http://{host}:{server.port}/openai/v1/",
        api_key=server.api_key,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(
            transport=GuardedTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
        ),
    )


async def test_the_transport_refuses_a_name_that_resolves_to_loopback(
    clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    async with guarded_sdk(clean_simulator, "localhost") as sdk:
        with pytest.raises(openai.APIConnectionError) as raised:
            await sdk.responses.create(model="gpt-4.1", input="Hi")

    reason = refusal_in(raised.value)
    assert reason is not None
    assert "refused to connect to localhost: it resolves to" in reason
    assert "a loopback address (ALLOW_LOOPBACK_ENDPOINTS is off)" in reason
    assert clean_simulator.requests() == []


async def test_with_loopback_allowed_the_name_is_dialled_at_its_checked_address(
    clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True

    async with guarded_sdk(clean_simulator, "localhost") as sdk:
        response = await sdk.responses.create(model="gpt-4.1", input="Hi")

    assert response.status == "completed"
    (logged,) = clean_simulator.requests(op="create")
    assert logged["headers"]["host"] == f"localhost:{clean_simulator.port}"


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("127.1", "loopback"),
        ("0x7f.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.10", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104  (dialled, never bound)
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
    ],
)
async def test_every_address_that_is_not_public_is_refused(
    host: str, kind: str, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    with pytest.raises(EgressRefused, match=f"a {kind} address"):
        await GuardedBackend().connect_tcp(host, 443, timeout=1)


async def test_allowing_loopback_allows_loopback_only(
    clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True

    stream = await GuardedBackend().connect_tcp("127.0.0.1", clean_simulator.port, timeout=5)
    await stream.aclose()
    with pytest.raises(EgressRefused, match="a private address"):
        await GuardedBackend().connect_tcp("10.0.0.1", 443, timeout=1)


def test_private_endpoints_are_allowed_by_network(settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False
    settings.ALLOWED_PRIVATE_NETWORKS = ["10.20.0.0/24", "127.0.0.0/8"]

    assert address_refusal(ipaddress.ip_address("10.20.0.5")) is None
    assert address_refusal(ipaddress.ip_address("10.21.0.5")) == "private"
    assert address_refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"


# --- Through the gateway ------------------------------------------------------------------


async def test_a_loopback_endpoint_is_refused_when_loopback_is_off(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    report = await llm.test_connection(sim_deployment)
    events = [
        event
        async for event in llm.stream_reply(
            sim_deployment, input="Hi", previous_response_id=None, instructions="", store=True
        )
    ]

    assert report.error is not None
    assert report.error.kind is ErrorKind.ENDPOINT_REFUSED
    assert report.error.message == REFUSED_MESSAGE
    assert "ALLOW_LOOPBACK_ENDPOINTS" in report.error.detail
    (failed,) = events
    assert isinstance(failed, Failed)
    assert failed.error.kind is ErrorKind.ENDPOINT_REFUSED
    assert clean_simulator.requests() == []


def _machine_name() -> str:
    """This machine's own name, which resolves to one of its non-public addresses."""
    name = socket.gethostname().lower()
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        pytest.skip(f"this machine's name {name} does not resolve")
    if any(ipaddress.ip_address(info[4][0]).is_global for info in infos):
        pytest.skip(f"this machine's name {name} resolves to a public address")
    return name


async def test_an_allowed_gateway_whose_name_resolves_inside_is_refused_on_connecting(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    name = _machine_name()
    settings.ALLOW_LOOPBACK_ENDPOINTS = False
    settings.ALLOWED_ENDPOINT_SUFFIXES = [name]
    sim_deployment.endpoint = f"https://{name}:{clean_simulator.port}"
    validate_endpoint(sim_deployment.endpoint)  # the name is on the allow-list
    await sim_deployment.asave()

    report = await llm.test_connection(sim_deployment)

    assert report.error is not None
    assert report.error.kind is ErrorKind.ENDPOINT_REFUSED
    assert report.error.message == REFUSED_MESSAGE
    assert f"refused to connect to {name}: it resolves to" in report.error.detail
    assert clean_simulator.requests() == []
