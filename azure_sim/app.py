"""The simulator's ASGI app: Azure's Responses API under ``/openai/v1/``, a control API for tests
under ``/_simulator/``. Everything lives in this process's memory; nothing touches Django.
"""

import re
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from azure_sim.asgi_http import HTTPError, Receive, Reply, Request, Scope, Send, read_request
from azure_sim.background import Generations, cancel, stop_generating
from azure_sim.building import new_response
from azure_sim.control import FaultBook, RequestLog
from azure_sim.defaults import SimulatorConfig
from azure_sim.delivery import accepted, hold_or_drop, replay, respond_when_done, stream
from azure_sim.inputs import input_items, newest_user_text
from azure_sim.keys import authorized, unauthorized
from azure_sim.objects import deleted_object, item_list, response_object
from azure_sim.options import (
    Fault,
    OptionError,
    Options,
    apply_options,
    extract_directives,
    parse_option_text,
)
from azure_sim.refusals import fault_error, not_found
from azure_sim.store import KeptResponse, ResponseStore

_RESPONSES_PATH = re.compile(
    r"^/openai/v1/responses(?:/(?P<id>[^/]+)(?P<action>/cancel|/input_items)?)?/?$"
)
_OPS = {
    (False, None, "POST"): "create",
    (True, None, "GET"): "retrieve",
    (True, None, "DELETE"): "delete",
    (True, "/cancel", "POST"): "cancel",
    (True, "/input_items", "GET"): "input_items",
}
# Azure's rule for deployment names: letters, digits, hyphens, underscores and periods.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")
# Faults of the line rather than of the model: a background stream's generation survives them.
_LINE_FAULTS = frozenset({Fault.STALL, Fault.CUT})


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith(_LOOPBACK_PREFIXES)


class Simulator:
    """One simulated Azure OpenAI resource: its stored responses, faults and request log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = ResponseStore(limit=config.max_stored_responses)
        self.faults = FaultBook()
        self.log = RequestLog(size=config.request_log_size)
        # Per-deployment options, set through the control API as an administrator sets up a
        # deployment on Azure: the deployment's name stays a name Azure would accept.
        self.deployment_options: dict[str, dict[str, str]] = {}
        self.generations = Generations()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.generations.cancel_all()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await read_request(scope, receive)
        except HTTPError as error:
            await Reply(send, region=self.config.region, log_entry=None).error(error)
            return
        if request.path.startswith("/_simulator/"):
            reply = Reply(send, region=self.config.region, log_entry=None)
            await self._answer(reply, self._control(request, reply))
        else:
            await self._api(request, receive, send)

    async def _answer(self, reply: Reply, handler: Coroutine[Any, Any, None]) -> None:
        try:
            await handler
        except HTTPError as error:
            await reply.error(error)
        except OptionError as error:
            await reply.error(HTTPError(400, "invalid_simulator_option", str(error)))

    # The Azure surface

    async def _api(self, request: Request, receive: Receive, send: Send) -> None:
        match = _RESPONSES_PATH.match(request.path)
        op = None
        if match is not None:
            op = _OPS.get((match["id"] is not None, match["action"], request.method))
        entry = self.log.record(
            method=request.method,
            path=request.path,
            op=op,
            query=request.query,
            headers=request.headers,
            body=request.parsed,
        )
        reply = Reply(send, region=self.config.region, log_entry=entry)
        if not authorized(request.headers, self.config):
            await reply.error(unauthorized(request.headers, self.config))
        elif match is None:
            await reply.error(HTTPError(404, "404", "Resource not found", error_type=None))
        elif op is None:
            await reply.error(HTTPError(405, None, f"Method {request.method} is not allowed here."))
        elif op == "create":
            await self._answer(reply, self._create(request, reply, receive))
        else:
            await self._answer(reply, self._on_response(op, match["id"], request, reply, receive))

    def _options(
        self,
        *,
        op: str,
        deployment: str,
        layers: list[tuple[str, dict[str, str]]],
        repeat_key: tuple[object, ...],
    ) -> Options:
        options = Options.from_config(self.config)
        for source, raw in layers:
            options = apply_options(options, raw, source=source)
        programmed = self.faults.take(op, deployment)
        if programmed is not None:
            return apply_options(options, programmed, source="the programmed fault")
        times = options.times
        if options.fault is None or times is None:
            return options
        if not self.faults.fires_inline(repeat_key, times):
            return replace(options, fault=None)
        return options

    async def _create(self, request: Request, reply: Reply, receive: Receive) -> None:
        body = request.json_object()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise HTTPError(
                400,
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
                param="model",
            )
        deployment = model
        if not _DEPLOYMENT_NAME.fullmatch(deployment):
            raise HTTPError(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
                error_type=None,
            )
        reply.deployment = deployment
        items = input_items(body.get("input"))
        user_text = newest_user_text(items)
        header = request.headers.get("x-simulator", "")
        _, directive = extract_directives(user_text)
        options = self._options(
            op="create",
            deployment=deployment,
            layers=[
                ("the deployment's options", self.deployment_options.get(deployment, {})),
                ("the x-simulator header", parse_option_text(header)),
                ("a [[sim]] directive", directive),
            ],
            repeat_key=("create", deployment, header, user_text),
        )
        if (error := fault_error(options, "create")) is not None:
            raise error
        response = new_response(
            body, deployment, items, options, responses=self.store, config=self.config
        )
        reply.record_response_id(response.id)
        if response.store:
            self.store.add(response)
        streaming = bool(body.get("stream"))
        line_fault = None
        if response.background:
            # The line's faults hit a stream's connection only: the generation goes on without it.
            line_fault = options if streaming and options.fault in _LINE_FAULTS else None
            generation = replace(options, fault=None) if line_fault else options
            self.generations.start(response, generation)
        if not await accepted(receive, options.accept_ms):
            # The client left before any answer: as mid-stream, a background response goes on.
            if not response.background:
                response.abandon()
            return
        if response.background and streaming:
            await replay(reply, response, -1, receive, line_fault=line_fault)
        elif response.background:
            await reply.json(200, response_object(response))
        elif streaming:
            await stream(reply, response, options, receive)
        else:
            await respond_when_done(reply, response, options, receive)

    async def _on_response(
        self, op: str, response_id: str, request: Request, reply: Reply, receive: Receive
    ) -> None:
        header = request.headers.get("x-simulator", "")
        found = self.store.find(response_id)
        reply.deployment = found.deployment if found else ""
        options = self._options(
            op=op,
            deployment=reply.deployment,
            layers=[("the x-simulator header", parse_option_text(header))],
            repeat_key=(op, response_id, header),
        )
        if (error := fault_error(options, op)) is not None:
            raise error
        if options.fault in (Fault.STALL, Fault.CUT):
            await hold_or_drop(reply, options, receive)
            return
        if found is None or options.fault is Fault.FORGET:
            raise not_found(response_id)
        match op:
            case "retrieve":
                await self._retrieve(request, reply, found, receive)
            case "delete":
                self._delete(found)
                await reply.json(200, deleted_object(found.id))
            case "cancel":
                await reply.json(200, response_object(cancel(found)))
            case "input_items":
                await reply.json(200, self._input_items(request, found))

    async def _retrieve(
        self, request: Request, reply: Reply, response: KeptResponse, receive: Receive
    ) -> None:
        if (request.query_value("stream") or "").lower() != "true":
            await reply.json(200, response_object(response))
            return
        if response.events is None:
            raise HTTPError(
                400,
                "invalid_value",
                "Only responses created with background=true can be streamed again.",
                param="stream",
            )
        try:
            starting_after = int(request.query_value("starting_after") or -1)
        except ValueError as exc:
            raise HTTPError(
                400, "invalid_type", "Invalid 'starting_after'.", param="starting_after"
            ) from exc
        await replay(reply, response, starting_after, receive)

    def _delete(self, response: KeptResponse) -> None:
        self.store.remove(response.id)
        stop_generating(response)

    @staticmethod
    def _input_items(request: Request, response: KeptResponse) -> dict[str, Any]:
        order = request.query_value("order") or "desc"
        if order not in ("asc", "desc"):
            raise HTTPError(400, "invalid_value", "order must be asc or desc.", param="order")
        try:
            limit = int(request.query_value("limit") or 20)
        except ValueError as exc:
            raise HTTPError(400, "invalid_type", "Invalid 'limit'.", param="limit") from exc
        if not 1 <= limit <= 100:
            raise HTTPError(400, "invalid_value", "limit must be from 1 to 100.", param="limit")
        items = response.input_items if order == "asc" else response.input_items[::-1]
        after = request.query_value("after")
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return item_list(items[:limit], has_more=len(items) > limit)

    # The control API

    async def _control(self, request: Request, reply: Reply) -> None:
        if not _is_loopback(request.client_host):
            raise HTTPError(
                403, "403", "The simulator's control API answers loopback clients only."
            )
        route = (request.method, request.path.rstrip("/"))
        match route:
            case ("GET", "/_simulator/health"):
                await reply.json(200, {"status": "ok"})
            case ("POST", "/_simulator/faults"):
                fault = self.faults.program(request.json_object(), Options.from_config(self.config))
                await reply.json(201, fault.describe())
            case ("GET", "/_simulator/faults"):
                await reply.json(200, {"data": self.faults.pending()})
            case ("GET", "/_simulator/requests"):
                await reply.json(200, {"data": self.log.entries(request.query_value("op"))})
            case ("PUT", path) if path.startswith("/_simulator/deployments/"):
                name = path.removeprefix("/_simulator/deployments/")
                if not _DEPLOYMENT_NAME.fullmatch(name):
                    raise HTTPError(400, "invalid_value", f"{name!r} is not a deployment name.")
                raw = parse_option_text(str(request.json_object().get("options", "")))
                apply_options(Options.from_config(self.config), raw, source="the deployment")
                self.deployment_options[name] = raw
                await reply.json(200, {"deployment": name, "options": raw})
            case ("POST", "/_simulator/reset"):
                self.reset()
                await reply.json(200, {"reset": True})
            case ("POST", "/_simulator/expire"):
                response_id = request.json_object().get("response_id")
                if not isinstance(response_id, str) or not self.store.expire(response_id):
                    raise not_found(str(response_id))
                await reply.json(200, {"id": response_id, "expired": True})
            case _:
                raise HTTPError(404, "404", "Resource not found", error_type=None)

    def reset(self) -> None:
        # Deployments' options stay: they are the resource's set-up, not its state.
        self.generations.cancel_all()
        self.store.clear()
        self.faults.clear()
        self.log.clear()


def create_app(config: SimulatorConfig | None = None) -> Simulator:
    """The simulator as an ASGI application; serve it with uvicorn."""
    return Simulator(config or SimulatorConfig())
