"""The simulator served by uvicorn in a background thread, for tests.

with SimulatorServer() as server:
    client = OpenAI(base_url=server.openai_base_url, api_key=server.api_key)
    server.program_fault(op="create", fault="rate_limit", times=1)
    ...
    assert server.requests(op="create")[0]["json"]["previous_response_id"] is None
"""

import json
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn

from azure_sim.app import create_app
from azure_sim.defaults import SimulatorConfig

# Tests want answers at once: no time to first token, no pacing.
FAST = SimulatorConfig(ttft_ms=0, tps=0)


class SimulatorError(RuntimeError):
    """The control API refused a call (e.g. an unknown fault name)."""


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> None:
        self.app = app
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                access_log=False,
                lifespan=lifespan,
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorServer(ThreadedServer):
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or FAST
        super().__init__(create_app(self.config))

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/openai/v1/"

    @property
    def api_key(self) -> str:
        return self.config.api_keys[0]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 server
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise SimulatorError(error.read().decode()) from None

    def program_fault(
        self,
        *,
        fault: str,
        op: str = "create",
        model: str | None = None,
        times: int = 1,
        **options: Any,
    ) -> dict[str, Any]:
        """Make the next ``times`` matching requests fail with ``fault`` (and ``options``)."""
        spec = {"op": op, "fault": fault, "times": times, **options}
        if model is not None:
            spec["model"] = model
        programmed: dict[str, Any] = self._call("POST", "/_simulator/faults", spec)
        return programmed

    def configure_deployment(self, name: str, options: str) -> None:
        """Give deployment ``name`` these options (``"tps=0,words=5"``) for every request."""
        self._call("PUT", f"/_simulator/deployments/{name}", {"options": options})

    def requests(self, op: str | None = None) -> list[dict[str, Any]]:
        """The requests received, oldest first; ``op`` is create, retrieve, delete, cancel or
        input_items."""
        path = "/_simulator/requests" + (f"?op={op}" if op else "")
        return list(self._call("GET", path)["data"])

    def reset(self) -> None:
        """Forget stored responses, programmed faults and the request log (deployments keep
        their options, as a resource keeps its deployments)."""
        self._call("POST", "/_simulator/reset", {})

    def expire(self, response_id: str) -> None:
        """Make a stored response expire now, as it would after the retention period."""
        self._call("POST", "/_simulator/expire", {"response_id": response_id})
