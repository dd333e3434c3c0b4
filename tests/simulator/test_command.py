import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def test_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(CommandError, match="loopback only"):
        call_command("simulator", host="10.0.0.5")


def test_serves_the_responses_api() -> None:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulator", "--port", "0", "--ttft-ms", "0", "--tps", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 20
        line = ""
        while "Uvicorn running on" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        base_url = line.split("running on ")[1].split()[0]
        response = httpx2.post(
            f"{base_url}/openai/v1/responses",
            json={"model": "gpt-4.1", "input": "Hi"},
            headers={"api-key": "sim-key", "x-simulator": "words=5"},
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert response.status_code == 200
    assert len(response.json()["output"][0]["content"][0]["text"].split()) == 5
