"""The floor the short-reply benchmark measures the app against (bench/floor.py): it relays a
socket's questions to the Responses API and forwards only the text deltas, chained."""

import json

import pytest
from starlette.testclient import TestClient

from azure_sim.composing import split_tokens
from azure_sim.testing import SimulatorServer
from bench import floor


def _ask(socket, text: str) -> tuple[list[str], bytes]:
    socket.send_text(json.dumps({"text": text}))
    deltas = []
    while True:
        message = socket.receive()
        if message.get("bytes") is not None:
            return deltas, message["bytes"]
        deltas.append(message["text"])


def test_the_floor_forwards_each_text_delta_and_chains_the_socket(
    clean_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOOR_UPSTREAM", clean_simulator.openai_base_url)
    clean_simulator.configure_deployment("gpt-4.1-floor", "burst=3,echo")
    monkeypatch.setenv("FLOOR_MODEL", "gpt-4.1-floor")
    monkeypatch.setenv("SIMULATOR_API_KEY", clean_simulator.api_key)
    questions = ["The first question has a few more words than three.", "And a second one, please."]

    with TestClient(floor.app) as client, client.websocket_connect("/ws") as socket:
        answers = [_ask(socket, question) for question in questions]

    for question, (deltas, status) in zip(questions, answers, strict=True):
        assert status == b"completed"
        assert "".join(deltas) == question
        tokens = split_tokens(question)
        assert deltas == ["".join(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]
    first, second = clean_simulator.requests(op="create")
    assert "previous_response_id" not in first["json"]
    assert second["json"]["previous_response_id"] == first["response_id"]
