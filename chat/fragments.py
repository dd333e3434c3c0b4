"""HTML fragments sent over the websocket: each top-level element is an htmx out-of-band swap.

Stream fragments are built by string formatting (they go out ~20 times a second per reply)
from HTML that ``chat.rendering.LiveMarkdown`` sanitized;
everything else renders the conversation page's partials, so the page and the socket agree.
"""

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from django.template.loader import render_to_string
from django.utils.functional import Promise
from django.utils.translation import gettext

from chat.models import Conversation, Message
from chat.rendering import stream_id

PAGE = "chat/conversation_detail.html"


def stream_append(message_id: int, text: str, *, part: str = "") -> str:
    """Text run on at the end of the growing block, escaped, until that block's next render.
    ``part`` is "" for the reply's text, "thinking" for its reasoning summary."""
    return (
        f'<span id="{stream_id(message_id, part)}-more" hx-swap-oob="beforeend">'
        f"{escape(text, quote=False)}</span>"
    )


def stream_render(message_id: int, finished: str, growing: str, *, part: str = "") -> str:
    """Blocks that just finished (sanitized HTML, added once) and the growing block, again."""
    prefix = stream_id(message_id, part)
    added = f'<div id="{prefix}-done" hx-swap-oob="beforeend">{finished}</div>' if finished else ""
    return added + f'<div id="{prefix}-tail" hx-swap-oob="innerHTML">{growing}</div>'


def _stream(prefix: str, finished: str, growing: str, *, classes: str, oob: bool) -> str:
    swap = ' hx-swap-oob="outerHTML"' if oob else ""
    return (
        f'<div id="{prefix}-stream" class="{classes} markdown" dir="auto"{swap}>'
        f'<div id="{prefix}-done" class="stream-done">{finished}</div>'
        f'<div id="{prefix}-tail" class="stream-tail">{growing}</div></div>'
    )


def stream_replace(message_id: int, finished: str, growing: str) -> str:
    """The reply so far, whole (sanitized HTML from ``LiveMarkdown.snapshot``)."""
    return _stream(stream_id(message_id), finished, growing, classes="message-stream", oob=True)


def thinking(message_id: int, finished: str, growing: str, *, live: bool) -> str:
    """The reply's "Thinking" section with its summary so far (sanitized HTML from
    ``LiveMarkdown.snapshot``): open while the model thinks, folded once the answer begins."""
    prefix = stream_id(message_id, "thinking")
    summary = escape(gettext("Thinking…") if live else gettext("Thinking"))
    return (
        f'<details id="{prefix}" class="thinking{" thinking-live" if live else ""}"'
        f'{" open" if live else ""} hx-swap-oob="outerHTML"><summary>{summary}</summary>'
        + _stream(prefix, finished, growing, classes="thinking-body", oob=False)
        + "</details>"
    )


def reply_queued(message_id: int, *, queued: bool) -> str:
    """The line of an in-flight reply that says it waits to start (the server is busy), or,
    with ``queued`` False, that line hidden again as the reply starts."""
    line = f'id="message-{message_id}-queued" class="message-queued" hx-swap-oob="outerHTML"'
    if not queued:
        return f"<p {line} hidden></p>"
    text = escape(gettext("The server is busy: your reply starts in a moment."))
    return f'<p {line} role="status">{text}</p>'


def _render(partial: str, context: dict[str, Any]) -> str:
    return render_to_string(f"{PAGE}#{partial}", context)


def message(message: Message, *, oob: bool = True) -> str:
    """A whole message, replacing its earlier self on the page when ``oob``."""
    return _render("message", {"message": message, "oob": oob})


def appended_messages(*messages: Message) -> str:
    inner = "".join(message(m, oob=False) for m in messages)
    return f'<div hx-swap-oob="beforeend:#messages">{inner}</div>'


def branch(
    conversation: Conversation,
    messages: list[Message],
    *,
    has_earlier: bool,
    in_flight_message: Message | None,
) -> str:
    """The messages of the branch shown, in place of the page's, with the controls to match."""
    batch = _render(
        "message_batch",
        {"conversation": conversation, "chat_messages": messages, "has_earlier": has_earlier},
    )
    return f'<div hx-swap-oob="innerHTML:#messages">{batch}</div>' + reply_controls(
        conversation, in_flight_message=in_flight_message
    )


def reply_controls(conversation: Conversation, *, in_flight_message: Message | None) -> str:
    return _render(
        "reply_controls",
        {"conversation": conversation, "in_flight_message": in_flight_message, "oob": True},
    )


def notice(text: str | Promise, *, level: str = "error") -> str:
    return _render("notice", {"text": text, "level": level, "oob": True})


def clear_notice() -> str:
    return '<div id="notices" class="notices" aria-live="assertive" hx-swap-oob="true"></div>'


def form_errors(errors: Mapping[str, Iterable[object]]) -> str:
    text = " ".join(str(error) for field_errors in errors.values() for error in field_errors)
    return notice(text)
