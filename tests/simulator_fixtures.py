"""Fixtures: the local Responses API simulator and deployments pointing at it.

The simulator is real (uvicorn on 127.0.0.1, spoken to over HTTP by the official SDK); the one
thing faked is Entra ID's token service (``fake_entra_credential``).
"""

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from azure.core.credentials import AccessToken

from azure_sim.defaults import SimulatorConfig
from azure_sim.testing import FAST, SimulatorServer
from chat import llm
from chat.models import Deployment
from tests.factories import DeploymentFactory

SIMULATOR_KEY_ENV = "SIMULATOR_API_KEY"
# Simulator options for tests: the whole reply at once.
FAST_OPTIONS = "ttft_ms=0,tps=0"
# Shaped as Entra ID's access tokens are (a JWT), so the simulator tells it from an API key.
FAKE_ENTRA_TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJjb2duaXRpdmVzZXJ2aWNlcyJ9.c2ln"


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    """The simulator, running for the whole session; most tests want ``clean_simulator``."""
    with SimulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
def strict_simulator() -> Iterator[SimulatorServer]:
    """A simulator that checks bearer tokens exactly: only the API key and FAKE_ENTRA_TOKEN
    pass, where the default one lets every JWT-shaped token through (Entra ID tokens cannot be
    checked offline)."""
    config = SimulatorConfig(
        api_keys=(FAST.api_keys[0], FAKE_ENTRA_TOKEN),
        accept_entra_tokens=False,
        ttft_ms=0,
        tps=0,
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(scope="session")
def echoing_simulator() -> Iterator[SimulatorServer]:
    """A strict simulator that repeats a wrong key in its 401, as OpenAI's own API does."""
    config = SimulatorConfig(
        api_keys=FAST.api_keys, accept_entra_tokens=False, echo_wrong_key=True, ttft_ms=0, tps=0
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def clean_echoing_simulator(echoing_simulator: SimulatorServer) -> SimulatorServer:
    echoing_simulator.reset()
    return echoing_simulator


@pytest.fixture
def clean_simulator(simulator: SimulatorServer) -> SimulatorServer:
    """The shared simulator with nothing stored, programmed or logged."""
    simulator.reset()
    return simulator


@pytest.fixture
def clean_strict_simulator(strict_simulator: SimulatorServer) -> SimulatorServer:
    strict_simulator.reset()
    return strict_simulator


@pytest.fixture
def simulator_key(clean_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The simulator's API key, in the environment variable the deployments name."""
    monkeypatch.setenv(SIMULATOR_KEY_ENV, clean_simulator.api_key)
    return clean_simulator.api_key


@pytest.fixture
def make_sim_deployment(
    db: None, clean_simulator: SimulatorServer, simulator_key: str, settings: Any
) -> Callable[..., Deployment]:
    """Build deployments on the simulator: ``make_sim_deployment(options="fault=cut")``.

    ``options`` are the deployment's simulator options (added to the fast ones), set on the
    simulator through its control API under the deployment's own name, a name Azure would
    accept; ``server`` picks another simulator; other keywords are Deployment fields.
    """
    settings.ALLOW_LOOPBACK_ENDPOINTS = True
    names = itertools.count(1)

    def make(
        *,
        model: str = "gpt-4.1",
        options: str = "",
        server: SimulatorServer | None = None,
        **fields: Any,
    ) -> Deployment:
        server = server or clean_simulator
        fields.setdefault("deployment_name", f"{model}-{next(names)}")
        server.configure_deployment(
            fields["deployment_name"], ",".join(filter(None, (FAST_OPTIONS, options)))
        )
        fields.setdefault("api_key_env", SIMULATOR_KEY_ENV)
        deployment: Deployment = DeploymentFactory(endpoint=server.base_url, model=model, **fields)
        return deployment

    return make


@pytest.fixture
def amake_sim_deployment(
    make_sim_deployment: Callable[..., Deployment],
) -> Callable[..., Awaitable[Deployment]]:
    """``make_sim_deployment`` for async tests: ``await amake_sim_deployment(model="gpt-5")``."""
    return sync_to_async(make_sim_deployment)


@pytest.fixture
def sim_deployment(make_sim_deployment: Callable[..., Deployment]) -> Deployment:
    """The default deployment: gpt-4.1 on the (clean) simulator, API key from the environment."""
    return make_sim_deployment(name="Simulator", is_default=True)


class FakeEntraCredential:
    """Stands in for Entra ID's token service; it hands out one fixed token."""

    def __init__(self, token: str = FAKE_ENTRA_TOKEN) -> None:
        self.token = token
        self.scopes: list[str] = []
        self.deployments: list[Deployment] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_entra_credential(monkeypatch: pytest.MonkeyPatch) -> FakeEntraCredential:
    """Replace the gateway's Entra ID credential; every request after it stays real."""
    credential = FakeEntraCredential()

    def make_credential(deployment: Deployment) -> FakeEntraCredential:
        credential.deployments.append(deployment)
        return credential

    monkeypatch.setattr(llm.clients, "make_credential", make_credential)
    return credential
