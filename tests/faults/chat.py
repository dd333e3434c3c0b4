"""A person chatting with an app process over a real websocket, and what the database and the
upstream (the simulator process) hold afterwards: the fault tests' eyes."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import requests
from websockets.sync.client import ClientConnection, connect

from azure_sim.testing import SimulatorServer
from tests.faults.conftest import REPO, USERNAME, Process, app_env, sign_in

SIMULATOR_KEY = "sim-key"  # the simulator's default key
FINAL = r"message-assistant status-(completed|cancelled|incomplete|failed)"


def app_settings(**extra: str) -> dict[str, str]:
    return {"SIMULATOR_API_KEY": SIMULATOR_KEY, "ALLOW_LOOPBACK_ENDPOINTS": "true", **extra}


def add_conversation(
    database_url: str, simulator: SimulatorServer, options: str, *, background_mode: bool = False
) -> int:
    """A simulator deployment with these options, and a conversation of USERNAME on it."""
    simulator.configure_deployment("gpt-4.1-fault", options)
    env = app_env(database_url=database_url, redis_url="", **app_settings())
    code = f"""
from accounts.models import User
from chat.models import Conversation, Deployment
deployment = Deployment.objects.create(
    name="Simulator", endpoint={simulator.base_url!r}, region="swedencentral",
    deployment_name="gpt-4.1-fault", model="gpt-4.1", auth_mode="api_key",
    api_key_env="SIMULATOR_API_KEY", is_default=True, background_mode={background_mode!r},
)
print(Conversation.objects.create(
    owner=User.objects.get(username={USERNAME!r}), deployment=deployment
).pk)
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return int(out.stdout.strip().splitlines()[-1])


@dataclass
class Tab:
    """One browser tab's socket on a conversation."""

    socket: ClientConnection
    frames: list[str]
    _stack: contextlib.ExitStack

    @classmethod
    def open(cls, app: Process, conversation_id: int, session: requests.Session | None = None):
        session = session or sign_in(app.base_url)
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        stack = contextlib.ExitStack()
        socket = stack.enter_context(
            connect(
                f"ws://127.0.0.1:{app.port}/ws/conversations/{conversation_id}/",
                additional_headers={"Origin": app.base_url, "Cookie": cookie},
                open_timeout=10,
                max_size=None,
            )
        )
        return cls(socket, [], stack)

    def send(self, text: str) -> None:
        self.socket.send(json.dumps({"text": text, "client_id": str(uuid.uuid4())}))

    def stop(self, message_id: int) -> None:
        self.socket.send(json.dumps({"action": "stop", "message_id": message_id}))

    def until(self, pattern: str, *, within: float = 30) -> str:
        """Frames until one matches ``pattern``; returns the frame that did."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no frame matched {pattern!r} within {within:g}s"
            frame = str(self.socket.recv(timeout=remaining))
            self.frames.append(frame)
            if re.search(pattern, frame):
                return frame

    def close(self) -> None:
        self._stack.close()


def upstream_creates(simulator: SimulatorServer) -> list[dict[str, Any]]:
    return simulator.requests(op="create")


def query(database_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, connect_timeout=5) as connection:
        return connection.execute(sql, params).fetchall()  # type: ignore[arg-type]


def replies(database_url: str, conversation_id: int) -> list[tuple[int, str, str, str]]:
    """(id, status, text, response_id) of each reply, oldest first."""
    return [
        (row[0], row[1], row[2], row[3])
        for row in query(
            database_url,
            "SELECT id, status, text, response_id FROM chat_message "
            "WHERE conversation_id = %s AND role = 'assistant' ORDER BY id",
            conversation_id,
        )
    ]


def copies_without_row(database_url: str, simulator: SimulatorServer) -> list[str]:
    """Response ids the upstream stored that have no ledger row: the goal is none."""
    stored = [
        r["response_id"]
        for r in upstream_creates(simulator)
        if r.get("json", {}).get("store") and r.get("response_id")
    ]
    recorded = {
        row[0] for row in query(database_url, "SELECT response_id FROM chat_storedresponse")
    }
    return [response_id for response_id in stored if response_id not in recorded]


def upstream_text(simulator: SimulatorServer, response_id: str) -> str:
    """The text the upstream generated for a response, as it keeps it."""
    response = requests.get(
        f"{simulator.openai_base_url}responses/{response_id}",
        headers={"api-key": SIMULATOR_KEY},
        timeout=10,
    )
    response.raise_for_status()
    return "".join(
        part.get("text", "")
        for item in response.json()["output"]
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )
