"""The JSON shapes Azure returns, as plain dicts (see ``openai/types/responses/*.py``)."""

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from azure_sim.store import KeptResponse


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """An assistant message; ``text`` None gives the empty shell that starts a stream."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if text is None else [output_text_part(text)],
    }


def summary_part(text: str) -> dict[str, str]:
    return {"type": "summary_text", "text": text}


# What this simulator seals reasoning with: its encrypted_content verifies only here, and only
# unchanged, as Azure's does.
_SEAL_KEY = secrets.token_bytes(32)


def _seal(item_id: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"id": item_id}).encode()).decode()
    mac = hmac.new(_SEAL_KEY, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def sealed_reasoning_verifies(item_id: str, encrypted_content: object) -> bool:
    """Whether ``encrypted_content`` is what this simulator sealed for reasoning ``item_id``."""
    return isinstance(encrypted_content, str) and hmac.compare_digest(
        encrypted_content, _seal(item_id)
    )


def reasoning_item(item_id: str, summary: str | None, *, encrypted: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [summary_part(summary)] if summary else [],
    }
    if encrypted:
        item["encrypted_content"] = _seal(item_id)
    return item


def usage(response: KeptResponse) -> dict[str, Any]:
    return {
        "input_tokens": response.input_tokens,
        "input_tokens_details": {"cached_tokens": response.prefix_tokens, "cache_write_tokens": 0},
        "output_tokens": response.output_tokens,
        "output_tokens_details": {"reasoning_tokens": response.plan.reasoning_tokens},
        "total_tokens": response.input_tokens + response.output_tokens,
    }


def _item_status(response: KeptResponse, index: int) -> str:
    """Items finish in order; an item left unfinished by a finished response is incomplete."""
    if index < response.items_done:
        return "completed"
    return "in_progress" if response.running else "incomplete"


def output_items(response: KeptResponse) -> list[dict[str, Any]]:
    """The output items announced so far, with the text generated so far."""
    items: list[dict[str, Any]] = []
    plan = response.plan
    if plan.reasons and response.items_added > 0:
        encrypted = "reasoning.encrypted_content" in response.params["include"]
        items.append(reasoning_item(response.reasoning_id, plan.summary, encrypted=encrypted))
    if response.items_added > len(items):
        status = _item_status(response, len(items))
        items.append(message_item(response.message_id, response.text, status))
    return items


def content_filter_results(category: str) -> dict[str, Any]:
    """Azure's per-category verdicts, with ``category`` the one that fired."""
    results: dict[str, Any] = {
        name: {"filtered": False, "severity": "safe"}
        for name in ("hate", "self_harm", "sexual", "violence")
    }
    results["jailbreak"] = {"filtered": False, "detected": False}
    if category in {"jailbreak", "protected_material_text", "protected_material_code"}:
        results[category] = {"filtered": True, "detected": True}
    else:
        results[category] = {"filtered": True, "severity": "high"}
    return results


def response_object(response: KeptResponse) -> dict[str, Any]:
    params = response.params
    body: dict[str, Any] = {
        "id": response.id,
        "object": "response",
        "created_at": response.created_at,
        "status": response.status,
        "background": response.background,
        "completed_at": response.completed_at if response.status == "completed" else None,
        "error": response.error,
        "incomplete_details": (
            {"reason": response.incomplete_reason} if response.incomplete_reason else None
        ),
        "instructions": params["instructions"],
        "max_output_tokens": params["max_output_tokens"],
        "max_tool_calls": None,
        "model": response.deployment,
        "output": output_items(response),
        "parallel_tool_calls": params["parallel_tool_calls"],
        "previous_response_id": params["previous_response_id"],
        "prompt_cache_key": params["prompt_cache_key"],
        "reasoning": params["reasoning"],
        "safety_identifier": params["safety_identifier"],
        "service_tier": "default",
        "store": response.store,
        "temperature": params["temperature"],
        "text": params["text"],
        "tool_choice": params["tool_choice"],
        "tools": params["tools"],
        "top_logprobs": 0,
        "top_p": params["top_p"],
        "truncation": params["truncation"],
        "usage": None if response.running else usage(response),
        "user": params["user"],
        "metadata": params["metadata"],
    }
    if response.filtered_category:
        body["content_filters"] = [
            {
                "blocked": True,
                "source_type": "completion",
                "content_filter_results": content_filter_results(response.filtered_category),
            }
        ]
    return body


def deleted_object(response_id: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def item_list(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else "",
        "last_id": items[-1]["id"] if items else "",
        "has_more": has_more,
    }
