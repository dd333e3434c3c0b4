from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI, OpenAI

from azure_sim.testing import SimulatorServer


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def server(simulator_server: SimulatorServer) -> SimulatorServer:
    """The shared simulator with nothing stored, programmed or logged."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[OpenAI]:
    # No retries: a test of a fault must see the fault, not the SDK's recovery from it.
    with OpenAI(base_url=server.openai_base_url, api_key=server.api_key, max_retries=0) as client:
        yield client


@pytest.fixture
async def aclient(server: SimulatorServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=server.openai_base_url, api_key=server.api_key, max_retries=0
    ) as client:
        yield client
