"""``make run``'s server (``manage.py serve``): the app, the simulator and the task worker,
as processes, so that a deletion queued through the ledger finishes with nothing else started."""

import contextlib
import socket
import sqlite3
import sys
from pathlib import Path

import openai
import pytest

from azure_sim.defaults import SimulatorConfig
from tests.faults.conftest import _answers, _listening, app_env, free_port, manage, wait_for

QUEUE_DELETION = """
from datetime import timedelta
from django.utils import timezone
from chat.ledger import ledger_queue_deletions
from chat.models import Deployment, StoredResponse
row = StoredResponse.objects.create(
    response_id={response_id!r},
    deployment=Deployment.objects.get(name="Local simulator"),
    remote_expires_at=timezone.now() + timedelta(days=30),
)
assert ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=row.pk)) == 1
"""


def _state(database: Path, response_id: str) -> str:
    with sqlite3.connect(database, timeout=5) as db:
        (state,) = db.execute(
            "SELECT state FROM chat_storedresponse WHERE response_id = ?", (response_id,)
        ).fetchone()
    return str(state)


def test_serve_runs_a_worker_that_deletes_what_the_ledger_queues(tmp_path, start_process):
    database = tmp_path / "db.sqlite3"
    # Nothing of this process's environment may give the worker the simulator's key: only
    # serve does.
    env = app_env(database_url=f"sqlite:///{database}", redis_url="")
    env.pop("SIMULATOR_API_KEY", None)
    manage("migrate", "--noinput", "-v0", env=env)
    port, simulator_port = free_port(), free_port()
    serve = start_process(
        "serve",
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--simulator-port",
            str(simulator_port),
        ],
        env=env,
        port=port,
    )
    serve.wait_until(lambda: _answers(f"{serve.base_url}/healthz"), "/healthz did not answer")

    sdk = openai.OpenAI(
        base_url=f"http://127.0.0.1:{simulator_port}/openai/v1/",
        api_key=SimulatorConfig().api_keys[0],
        max_retries=0,
    )
    with sdk:
        response_id = sdk.responses.create(model="gpt-4.1", input="Hello", store=True).id
        manage("shell", "-c", QUEUE_DELETION.format(response_id=response_id), env=env)

        serve.wait_until(
            lambda: _state(database, response_id) == "deleted", "the deletion did not finish"
        )
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(response_id)

    serve.stop()
    assert serve.process.returncode == 0, serve.output()
    wait_for(lambda: not _listening(port), "the app server outlived serve", timeout=10)
    wait_for(lambda: not _listening(simulator_port), "the simulator outlived serve", timeout=10)


def _endpoint(database: Path) -> str:
    with sqlite3.connect(database, timeout=5) as db:
        (endpoint,) = db.execute(
            "SELECT endpoint FROM chat_deployment WHERE name = 'Local simulator'"
        ).fetchone()
    return str(endpoint)


def test_serve_without_a_simulator_port_takes_a_free_one(tmp_path, start_process) -> None:
    """Two checkouts running ``make run`` at once: the second's simulator must not need the
    port the first one holds (it used to be 8100 for everyone)."""
    database = tmp_path / "db.sqlite3"
    env = app_env(database_url=f"sqlite:///{database}", redis_url="")
    manage("migrate", "--noinput", "-v0", env=env)
    with socket.socket() as taken:
        # The old fixed port, held as another checkout's simulator would hold it.
        with contextlib.suppress(OSError):
            taken.bind(("127.0.0.1", 8100))
            taken.listen()
        port = free_port()
        serve = start_process(
            "serve", [sys.executable, "manage.py", "serve", "--port", str(port)], env=env, port=port
        )
        serve.wait_until(lambda: _answers(f"{serve.base_url}/healthz"), "/healthz did not answer")
        endpoint = _endpoint(database)
        assert endpoint != "http://127.0.0.1:8100"
        sdk = openai.OpenAI(
            base_url=f"{endpoint}/openai/v1/", api_key=SimulatorConfig().api_keys[0], max_retries=0
        )
        with sdk:
            assert sdk.responses.create(model="gpt-4.1", input="Hello").id.startswith("resp_")
        serve.stop()
    assert serve.process.returncode == 0, serve.output()
