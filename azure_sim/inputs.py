"""A request's ``input`` and ``instructions``, turned into stored items and plain text.

Images and files arrive inline, as Azure takes them: ``input_image`` with a data URL and
``input_file`` with ``file_data`` (and a ``filename``). Their shape, type and size are checked
as Azure checks them, and each stands in the message's text as a marker such as
``[image image/png, 2048 bytes]``, so replies and rebuilt histories can show what was sent.
"""

import base64
import binascii
import re
from typing import Any

from azure_sim.asgi_http import HTTPError
from azure_sim.objects import message_item, new_id, sealed_reasoning_verifies

_MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})


def _bad_input(message: str) -> HTTPError:
    return HTTPError(400, "invalid_value", message, param="input")


MAX_INLINE_BYTES = 50 * 1024 * 1024
_IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_DATA_URL = re.compile(r"data:([\w.+/-]+);base64,(.*)", re.S)


def _decoded(url: Any, *, param: str) -> tuple[str, bytes]:
    """The content type and bytes of a base64 data URL, as Azure refuses a bad one."""
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise HTTPError(
            400, "invalid_value", f"Invalid '{param}': expected a base64 data URL.", param=param
        )
    try:
        data = base64.b64decode(match[2], validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(
            400, "invalid_value", f"Invalid base64 data in '{param}'.", param=param
        ) from None
    if len(data) > MAX_INLINE_BYTES:
        raise HTTPError(400, "file_too_large", f"'{param}' is larger than 50 MB.", param=param)
    return match[1], data


def _image_part(part: dict[str, Any]) -> None:
    url = part.get("image_url")
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        raise HTTPError(400, "invalid_value", "Error while downloading the image.", param="url")
    content_type, data = _decoded(url, param="image_url")
    signatures = _IMAGE_SIGNATURES.get(content_type)
    if signatures is None:
        raise HTTPError(
            400,
            "invalid_image_format",
            f"Unsupported image type {content_type!r}.",
            param="image_url",
        )
    if not data.startswith(signatures) or (content_type == "image/webp" and data[8:12] != b"WEBP"):
        raise HTTPError(
            400, "invalid_image", "The image data could not be read.", param="image_url"
        )


def _file_part(part: dict[str, Any]) -> None:
    filename = part.get("filename")
    if not isinstance(filename, str) or not filename:
        raise HTTPError(
            400,
            "missing_required_parameter",
            "Missing required parameter: 'filename'.",
            param="filename",
        )
    content_type, data = _decoded(part.get("file_data"), param="file_data")
    if content_type != "application/pdf" or not data.startswith(b"%PDF-"):
        raise HTTPError(
            400, "invalid_value", "The file could not be read as a PDF.", param="file_data"
        )


_CHECKS = {"input_image": _image_part, "input_file": _file_part}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise _bad_input("A message's content must be a string or a list of content parts.")
    parts = []
    for part in content:
        kind = part.get("type")
        if kind in _CHECKS:
            _CHECKS[kind](part)
            parts.append(part)
        elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            parts.append(part)
        else:
            raise _bad_input(f"Invalid content part type {kind!r}.")
    return parts


def _marker(part: dict[str, Any]) -> str:
    """``[image image/png, 2048 bytes]`` or ``[file report.pdf, 5120 bytes]`` for a checked part."""
    url = part.get("image_url") if part["type"] == "input_image" else part.get("file_data")
    match = _DATA_URL.fullmatch(str(url))
    encoded = match[2] if match else ""
    size = len(encoded) * 3 // 4 - encoded[-2:].count("=")
    if part["type"] == "input_image":
        return f" [image {match[1] if match else '?'}, {size} bytes]"
    return f" [file {part.get('filename')}, {size} bytes]"


def parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "".join(
        part.get("text", "") if part.get("type") in _TEXT_PARTS else _marker(part)
        for part in parts
        if isinstance(part, dict) and part.get("type") in (*_TEXT_PARTS, *_CHECKS)
    )


def attachment_markers(text: str) -> list[str]:
    """The images and files a message's text stands for, as ``parts_text`` marked them."""
    return re.findall(r"\[(?:image|file) [^\]]*\]", text)


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


def _reasoning(item: dict[str, Any]) -> dict[str, Any]:
    """A reasoning item sent back: verified by its sealed content, since nothing is stored
    when it comes back with a rebuilt history (``store=false``)."""
    item_id = str(item.get("id") or "")
    if "encrypted_content" not in item:
        raise HTTPError(
            404,
            None,
            f"Item with id '{item_id}' not found. Items are not persisted when `store` is set "
            "to false. Try again with `store` set to true, or remove this item from your input.",
            param="input",
        )
    if not sealed_reasoning_verifies(item_id, item["encrypted_content"]):
        raise HTTPError(
            400,
            "invalid_encrypted_content",
            f"The encrypted content for item {item_id} could not be verified.",
            param="input",
        )
    return item


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
        elif item.get("type") == "reasoning":
            items.append(_reasoning(item))
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
