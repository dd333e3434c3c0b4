"""A request's ``input`` and ``instructions``, turned into stored items and plain text."""

from typing import Any

from chat.simulator.http import HTTPError
from chat.simulator.objects import message_item, new_id

_MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})


def _bad_input(message: str) -> HTTPError:
    return HTTPError(400, "invalid_value", message, param="input")


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return content
    raise _bad_input("A message's content must be a string or a list of content parts.")


def parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "".join(
        part.get("text", "")
        for part in parts
        if isinstance(part, dict) and part.get("type") in _TEXT_PARTS
    )


def _message(item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role not in _MESSAGE_ROLES:
        raise _bad_input(f"Invalid role {role!r}: use user, system, developer or assistant.")
    item_id = item.get("id") or new_id("msg")
    if role == "assistant":
        return message_item(item_id, parts_text(item.get("content")), "completed")
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "content": _content_parts(item.get("content")),
        "status": "completed",
    }


def input_items(raw: Any) -> list[dict[str, Any]]:
    """The request's input as the items Azure stores and lists back, each with an id."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message({"role": "user", "content": raw})]
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise _bad_input("input must be a string or a list of input items.")
    items = []
    for item in raw:
        if item.get("type", "message") == "message":
            items.append(_message(item))
        else:
            items.append({**item, "id": item.get("id") or new_id("item")})
    return items


def message_texts(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(role, text)`` of every message among ``items``."""
    return [
        (item["role"], parts_text(item["content"])) for item in items if item["type"] == "message"
    ]


def newest_user_text(items: list[dict[str, Any]]) -> str:
    for role, text in reversed(message_texts(items)):
        if role == "user":
            return text
    return ""


def instructions_text(instructions: Any) -> str:
    if isinstance(instructions, list):
        return "\n".join(
            parts_text(item.get("content")) for item in instructions if isinstance(item, dict)
        )
    return instructions if isinstance(instructions, str) else ""
