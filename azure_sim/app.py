"""The simulator's ASGI app: Azure's Responses API under ``/openai/v1/``, a control API for tests
under ``/_simulator/``. Everything lives in this process's memory; nothing touches Django.
"""

import asyncio
import base64
import hmac
import json
import math
import re
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from azure_sim.asgi_http import (
    DisconnectWatcher,
    HTTPError,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    read_request,
)
from azure_sim.composing import (
    compose_reply,
    count_tokens,
    is_reasoning_model,
    plan_reply,
    recall_reply,
    seed_for,
)
from azure_sim.control import FaultBook, RequestLog
from azure_sim.defaults import SimulatorConfig
from azure_sim.inputs import (
    attachment_markers,
    input_items,
    instructions_text,
    message_texts,
    newest_user_text,
)
from azure_sim.objects import (
    content_filter_results,
    deleted_object,
    item_list,
    new_id,
    response_object,
)
from azure_sim.options import (
    Fault,
    OptionError,
    Options,
    apply_options,
    extract_directives,
    parse_option_text,
)
from azure_sim.store import KeptResponse, ResponseStore
from azure_sim.streams import DROP, HOLD, Step, Wait, response_events

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
_AZURE_OPERATION_NAMES = {
    "create": "Responses_Create",
    "retrieve": "Responses_Get",
    "delete": "Responses_Delete",
    "cancel": "Responses_Cancel",
    "input_items": "Responses_ListInputItems",
}
# Azure's rule for deployment names: letters, digits, hyphens, underscores and periods.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")
_SUMMARY_MODES = frozenset({"auto", "concise", "detailed"})
# Faults of the line rather than of the model: a background stream's generation survives them.
_LINE_FAULTS = frozenset({Fault.STALL, Fault.CUT})
_TEXT_DELTA_EVENT = b"event: response.output_text.delta\n"
# Events sent in one write when nothing asks to pause between them.
_BATCH = 64


def looks_like_entra_token(token: str) -> bool:
    """An Entra ID access token is a JWT: three base64url parts, the first a JSON header naming
    its algorithm. An API key is never shaped so, so a wrong key sent as a bearer token fails
    here as it would on Azure."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)


def _not_found(response_id: str) -> HTTPError:
    return HTTPError(404, None, f"Response with id '{response_id}' not found.")


def _rate_limited(op: str, retry_after_ms: int) -> HTTPError:
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    message = (
        f"Requests to the {_AZURE_OPERATION_NAMES[op]} Operation under Azure OpenAI API version "
        f"v1 have exceeded call rate limit of your current AIServices S0 pricing tier. Please "
        f"retry after {seconds} seconds. Please contact Azure support service if you would like "
        f"to further increase the default rate limit."
    )
    headers = [
        (b"retry-after", str(seconds).encode()),
        (b"retry-after-ms", str(retry_after_ms).encode()),
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-remaining-tokens", b"0"),
    ]
    return HTTPError(429, "429", message, error_type=None, headers=headers)


def _prompt_filtered(category: str) -> HTTPError:
    results = content_filter_results(category)
    message = (
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry. To learn more about our content "
        "filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766"
    )
    details = {
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": results},
        "content_filters": [
            {"blocked": True, "source_type": "prompt", "content_filter_results": results}
        ],
    }
    return HTTPError(
        400, "content_filter", message, param="prompt", error_type=None, details=details
    )


def _fault_error(options: Options, op: str) -> HTTPError | None:
    """The error reply a fault stands for, when it is answered before any generation."""
    match options.fault:
        case Fault.RATE_LIMIT:
            return _rate_limited(op, options.retry_after_ms)
        case Fault.SERVER_ERROR:
            return HTTPError(
                500,
                "server_error",
                "The server had an error while processing your request. Sorry about that!",
                error_type="server_error",
            )
        case Fault.UNAVAILABLE:
            return HTTPError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request. "
                "Please try again later.",
                error_type=None,
            )
        case Fault.CONTENT_FILTER_PROMPT if op == "create":
            return _prompt_filtered(options.category)
        case Fault.CONTEXT_TOO_LONG if op == "create":
            return HTTPError(
                400,
                "context_length_exceeded",
                "Your input exceeds the context window of this model. "
                "Please adjust your input and try again.",
                param="input",
            )
    return None


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith(_LOOPBACK_PREFIXES)


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise HTTPError(400, "invalid_type", f"Invalid type for '{name}'.", param=name)
    return value


def _reported_params(body: dict[str, Any], **checked: Any) -> dict[str, Any]:
    """The request's parameters as the response object reports them, with Azure's defaults."""
    return {
        "instructions": body.get("instructions"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "safety_identifier": body.get("safety_identifier"),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
        **checked,
    }


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
        self._background: set[asyncio.Task[None]] = set()

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
                self._cancel_background()
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
        if not self._authorized(request.headers):
            await reply.error(self._unauthorized(request.headers))
        elif match is None:
            await reply.error(HTTPError(404, "404", "Resource not found", error_type=None))
        elif op is None:
            await reply.error(HTTPError(405, None, f"Method {request.method} is not allowed here."))
        elif op == "create":
            await self._answer(reply, self._create(request, reply, receive))
        else:
            await self._answer(reply, self._on_response(op, match["id"], request, reply, receive))

    def _unauthorized(self, headers: dict[str, str]) -> HTTPError:
        offered = headers.get("api-key") or headers.get("authorization", "").partition(" ")[2]
        if self.config.echo_wrong_key and offered.strip():
            return HTTPError(
                401,
                "invalid_api_key",
                f"Incorrect API key provided: {offered.strip()}. You can find your API key in "
                "the resource's Keys and Endpoint page.",
            )
        return HTTPError(401, "401", ACCESS_DENIED, error_type=None)

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = headers.get("api-key")
        if key is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return False
            if self.config.accept_entra_tokens and looks_like_entra_token(token):
                return True
            key = token
        return any(
            hmac.compare_digest(key.encode(), accepted.encode())
            for accepted in self.config.api_keys
        )

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
        if (error := _fault_error(options, "create")) is not None:
            raise error
        response = self._new_response(body, deployment, items, options)
        reply.record_response_id(response.id)
        if response.store:
            self.store.add(response)
        if response.background and body.get("stream"):
            # The line's faults hit this connection only: the generation goes on without it.
            line_fault = options if options.fault in _LINE_FAULTS else None
            generation = replace(options, fault=None) if line_fault else options
            self._start_background(response, generation)
            await self._replay(reply, response, -1, receive, line_fault=line_fault)
        elif response.background:
            self._start_background(response, options)
            await reply.json(200, response_object(response))
        elif body.get("stream"):
            await self._stream(reply, response, options, receive)
        else:
            await self._respond_when_done(reply, response, options, receive)

    def _previous(self, previous_id: Any, options: Options) -> KeptResponse | None:
        if previous_id is None:
            return None
        if not isinstance(previous_id, str):
            raise HTTPError(
                400,
                "invalid_type",
                "Invalid type for 'previous_response_id'.",
                param="previous_response_id",
            )
        previous = None if options.fault is Fault.FORGET else self.store.find(previous_id)
        if previous is None:
            raise HTTPError(
                self.config.previous_response_not_found_status,
                "previous_response_not_found",
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
            )
        return previous

    def _new_response(
        self, body: dict[str, Any], deployment: str, items: list[dict[str, Any]], options: Options
    ) -> KeptResponse:
        _optional(body, "stream", bool, False)
        background = _optional(body, "background", bool, False)
        store = _optional(body, "store", bool, True)
        if background and not store:
            raise HTTPError(
                400, "invalid_value", "Background mode requires store=true.", param="background"
            )
        max_output_tokens = _optional(body, "max_output_tokens", int, None)
        if max_output_tokens is not None and max_output_tokens < 16:
            raise HTTPError(
                400,
                "integer_below_min_value",
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16.",
                param="max_output_tokens",
            )
        include = _optional(body, "include", list, None) or []
        reasons = is_reasoning_model(deployment)
        reasoning = self._reasoning_params(body, reasons)
        previous = self._previous(body.get("previous_response_id"), options)
        instructions = body.get("instructions")

        turn = tuple((role, extract_directives(text)[0]) for role, text in message_texts(items))
        history = previous.context_for_next() if previous else ()
        prefix_tokens = previous.context_tokens_for_next() if previous else 0
        own_tokens = sum(count_tokens(text) for _, text in turn)
        plan = plan_reply(
            self._reply_text(options, instructions, history, turn),
            reasons=reasons,
            with_summary=reasoning["summary"] in _SUMMARY_MODES,
            max_output_tokens=max_output_tokens,
        )
        now = time.time()
        return KeptResponse(
            id=new_id("resp"),
            deployment=deployment,
            created_at=int(now),
            expires_at=now + self.config.retention_seconds,
            params=_reported_params(
                body,
                max_output_tokens=max_output_tokens,
                previous_response_id=previous.id if previous else None,
                reasoning=reasoning,
                include=include,
            ),
            input_items=items,
            own_turn=turn,
            history=history,
            prefix_tokens=prefix_tokens,
            input_tokens=count_tokens(instructions_text(instructions)) + prefix_tokens + own_tokens,
            plan=plan,
            message_id=new_id("msg"),
            reasoning_id=new_id("rs"),
            store=store,
            background=background,
            status="queued" if background else "in_progress",
        )

    @staticmethod
    def _reasoning_params(body: dict[str, Any], reasons: bool) -> dict[str, Any]:
        requested = _optional(body, "reasoning", dict, None) or {}
        if not reasons:
            if requested.get("effort") is not None:
                raise HTTPError(
                    400,
                    "unsupported_parameter",
                    "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                    param="reasoning.effort",
                )
            return {"effort": None, "summary": None}
        if body.get("temperature") not in (None, 1, 1.0):
            raise HTTPError(
                400,
                "unsupported_parameter",
                "Unsupported parameter: 'temperature' is not supported with this model.",
                param="temperature",
            )
        return {
            "effort": requested.get("effort") or "medium",
            "summary": requested.get("summary"),
        }

    @staticmethod
    def _reply_text(
        options: Options,
        instructions: Any,
        history: tuple[tuple[str, str], ...],
        turn: tuple[tuple[str, str], ...],
    ) -> str:
        user_text = next((text for role, text in reversed(turn) if role == "user"), "")
        if options.echo:
            return user_text
        if options.recall:
            return recall_reply(instructions_text(instructions), [*history, *turn])
        reply = compose_reply(seed_for(user_text), options.words)
        if markers := attachment_markers(user_text):
            return f"I can see what you attached: {', '.join(markers)}.\n\n{reply}"
        return reply

    async def _stream(
        self, reply: Reply, response: KeptResponse, options: Options, receive: Receive
    ) -> None:
        watcher = DisconnectWatcher(receive)
        await reply.start_stream()
        pending: list[bytes] = []
        try:
            for step in response_events(response, options, start=time.monotonic()):
                if isinstance(step, bytes):
                    pending.append(step)
                    if len(pending) >= _BATCH:
                        await reply.chunk(b"".join(pending))
                        pending.clear()
                    continue
                if isinstance(step, Wait):
                    delay = step.until - time.monotonic()
                    if delay <= 0:
                        # Running late: catch up in one write rather than one write per event.
                        continue
                if pending:
                    await reply.chunk(b"".join(pending))
                    pending.clear()
                if not await self._pause(step, watcher):
                    # Returning without ending the body makes the server drop the connection.
                    response.abandon()
                    return
            await reply.end(b"".join(pending))
        finally:
            watcher.stop()

    @staticmethod
    async def _pause(step: Step, watcher: DisconnectWatcher) -> bool:
        """Carry out a pause; False when the stream must end here (stall, cut or client gone)."""
        if isinstance(step, Wait):
            delay = step.until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            return not watcher.gone.is_set()
        if step is HOLD:
            await watcher.gone.wait()
        return False

    async def _respond_when_done(
        self, reply: Reply, response: KeptResponse, options: Options, receive: Receive
    ) -> None:
        watcher = DisconnectWatcher(receive)
        try:
            for step in response_events(response, options, start=time.monotonic()):
                if isinstance(step, bytes):
                    continue
                if step is DROP:
                    await reply.start_truncated()
                if not await self._pause(step, watcher):
                    response.abandon()
                    return
        finally:
            watcher.stop()
        if response.stream_error is not None:
            await reply.json(500, {"error": response.stream_error})
        else:
            await reply.json(200, response_object(response))

    def _start_background(self, response: KeptResponse, options: Options) -> None:
        response.events = []
        task = asyncio.create_task(self._run_background(response, options))
        response.task = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _run_background(response: KeptResponse, options: Options) -> None:
        events = response.events
        assert events is not None
        try:
            for step in response_events(response, options, start=time.monotonic()):
                if isinstance(step, bytes):
                    events.append(step)
                    continue
                response.changed.notify()
                if isinstance(step, Wait):
                    await asyncio.sleep(max(0.0, step.until - time.monotonic()))
                else:
                    # A stalled or cut generation never finishes; only cancel or delete end it.
                    await asyncio.Event().wait()
        finally:
            response.changed.notify()

    def _cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()

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
        if (error := _fault_error(options, op)) is not None:
            raise error
        if options.fault in (Fault.STALL, Fault.CUT):
            await self._hold_or_drop(reply, options, receive)
            return
        if found is None or options.fault is Fault.FORGET:
            raise _not_found(response_id)
        match op:
            case "retrieve":
                await self._retrieve(request, reply, found, receive)
            case "delete":
                self._delete(found)
                await reply.json(200, deleted_object(found.id))
            case "cancel":
                await reply.json(200, response_object(self._cancel(found)))
            case "input_items":
                await reply.json(200, self._input_items(request, found))

    @staticmethod
    async def _hold_or_drop(reply: Reply, options: Options, receive: Receive) -> None:
        if options.fault is Fault.CUT:
            await reply.start_truncated()
            return
        watcher = DisconnectWatcher(receive)
        await watcher.gone.wait()

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
        await self._replay(reply, response, starting_after, receive)

    @staticmethod
    async def _replay(
        reply: Reply,
        response: KeptResponse,
        starting_after: int,
        receive: Receive,
        *,
        line_fault: Options | None = None,
    ) -> None:
        """Send the stored events after ``starting_after``, then follow the live ones.

        With ``line_fault`` (a stall or a cut), the line fails after ``after`` text deltas
        while the response goes on generating, as a background response does on Azure."""
        events = response.events
        assert events is not None
        watcher = DisconnectWatcher(receive, on_gone=response.changed.notify)
        await reply.start_stream()
        position = max(0, starting_after + 1)
        deltas_left = line_fault.after if line_fault is not None else -1
        try:
            while not watcher.gone.is_set():
                if position < len(events) and line_fault is not None:
                    deltas_left -= events[position].startswith(_TEXT_DELTA_EVENT)
                    if deltas_left < 0:
                        if line_fault.fault is Fault.STALL:
                            await watcher.gone.wait()
                        return  # without ending the body: the server drops the connection
                    await reply.chunk(events[position])
                    position += 1
                    continue
                if position < len(events):
                    await reply.chunk(b"".join(events[position:]))
                    position = len(events)
                if not response.running:
                    await reply.end()
                    return
                await response.changed.wait()
        finally:
            watcher.stop()

    def _delete(self, response: KeptResponse) -> None:
        self.store.remove(response.id)
        if response.task is not None:
            response.task.cancel()
        if response.running:
            response.finish("cancelled")

    @staticmethod
    def _cancel(response: KeptResponse) -> KeptResponse:
        if not response.background:
            raise HTTPError(
                400,
                "invalid_value",
                "Only responses created with background=true can be cancelled.",
            )
        if response.running:
            if response.task is not None:
                response.task.cancel()
            response.finish("cancelled")
        return response

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
                    raise _not_found(str(response_id))
                await reply.json(200, {"id": response_id, "expired": True})
            case _:
                raise HTTPError(404, "404", "Resource not found", error_type=None)

    def reset(self) -> None:
        # Deployments' options stay: they are the resource's set-up, not its state.
        self._cancel_background()
        self.store.clear()
        self.faults.clear()
        self.log.clear()


def create_app(config: SimulatorConfig | None = None) -> Simulator:
    """The simulator as an ASGI application; serve it with uvicorn."""
    return Simulator(config or SimulatorConfig())
