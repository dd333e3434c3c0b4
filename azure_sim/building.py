"""A new response from a create request's body: its parameters checked as Azure checks them, the
chain it continues, and the reply the simulated model will give."""

import time
from typing import Any

from azure_sim.asgi_http import HTTPError
from azure_sim.composing import (
    compose_reply,
    count_tokens,
    is_reasoning_model,
    plan_reply,
    recall_reply,
    seed_for,
)
from azure_sim.defaults import SimulatorConfig
from azure_sim.inputs import attachment_markers, instructions_text, message_texts
from azure_sim.objects import new_id
from azure_sim.options import Fault, Options, extract_directives
from azure_sim.store import KeptResponse, ResponseStore

_SUMMARY_MODES = frozenset({"auto", "concise", "detailed"})


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


def _previous(
    previous_id: Any, options: Options, responses: ResponseStore, config: SimulatorConfig
) -> KeptResponse | None:
    if previous_id is None:
        return None
    if not isinstance(previous_id, str):
        raise HTTPError(
            400,
            "invalid_type",
            "Invalid type for 'previous_response_id'.",
            param="previous_response_id",
        )
    previous = None if options.fault is Fault.FORGET else responses.find(previous_id)
    if previous is None:
        raise HTTPError(
            config.previous_response_not_found_status,
            "previous_response_not_found",
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
        )
    return previous


def new_response(
    body: dict[str, Any],
    deployment: str,
    items: list[dict[str, Any]],
    options: Options,
    *,
    responses: ResponseStore,
    config: SimulatorConfig,
) -> KeptResponse:
    """The response ``body`` asks for, not yet stored; ``responses`` holds the chain it names."""
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
    reasoning = _reasoning_params(body, reasons)
    previous = _previous(body.get("previous_response_id"), options, responses, config)
    instructions = body.get("instructions")

    turn = tuple((role, extract_directives(text)[0]) for role, text in message_texts(items))
    history = previous.context_for_next() if previous else ()
    prefix_tokens = previous.context_tokens_for_next() if previous else 0
    own_tokens = sum(count_tokens(text) for _, text in turn)
    plan = plan_reply(
        _reply_text(options, instructions, history, turn),
        reasons=reasons,
        with_summary=reasoning["summary"] in _SUMMARY_MODES,
        max_output_tokens=max_output_tokens,
    )
    now = time.time()
    return KeptResponse(
        id=new_id("resp"),
        deployment=deployment,
        created_at=int(now),
        expires_at=now + config.retention_seconds,
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
