"""A person's conversations as files to keep: JSON (documented in docs/export-format.md) and
Markdown. Built from the owner's rows only; the callers pass conversations from ``for_user``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from chat.models import Conversation, Deployment, Message
from chat.selectors import branch_path, tree_of

FORMAT_VERSION = 1


def conversation_export_messages(conversation: Conversation) -> QuerySet[Message]:
    """The messages an export of ``conversation`` holds: the branch it shows, in order."""
    return export_messages_of([conversation])


def export_messages_of(conversations: Iterable[Conversation]) -> QuerySet[Message]:
    """The exported messages of several conversations in two queries, grouped by conversation
    and in order within each: the branch each one shows (its other versions stay out, as they
    do on the page). Every export goes through here, so what "the conversation" is (which
    messages, in which order) is decided in this one place."""
    conversations = list(conversations)
    shapes: dict[int, list[tuple[int, int | None, bool]]] = defaultdict(list)
    rows = Message.objects.filter(conversation__in=[c.pk for c in conversations]).order_by("id")
    for conversation_id, message_id, parent_id, branch_root in rows.values_list(
        "conversation_id", "id", "parent_id", "branch_root"
    ):
        shapes[conversation_id].append((message_id, parent_id, branch_root))
    shown = [
        message_id
        for conversation in conversations
        for message_id in branch_path(conversation, tree_of(shapes[conversation.pk]))
    ]
    return (
        Message.objects.filter(pk__in=shown)
        .select_related("deployment")
        .order_by("conversation_id", "id")
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _deployment(deployment: Deployment | None) -> dict[str, str] | None:
    if deployment is None:
        return None
    return {
        "name": deployment.name,
        "deployment_name": deployment.deployment_name,
        "model": deployment.model,
    }


def message_data(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "role": message.role,
        "status": message.status,
        "text": message.text,
        "created_at": _time(message.created_at),
        "completed_at": _time(message.completed_at),
        "reply_to": message.reply_to_id,
        "deployment": _deployment(message.deployment),
        "response_id": message.response_id or None,
        "usage": {
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "reasoning_tokens": message.reasoning_tokens,
            "cached_tokens": message.cached_tokens,
        },
        "latency_ms": {"first_token": message.first_token_ms, "total": message.duration_ms},
        "error": {"code": message.error_code, "message": message.error} if message.error else None,
    }


def conversation_data(conversation: Conversation, messages: Iterable[Message]) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.display_title,
        "created_at": _time(conversation.created_at),
        "updated_at": _time(conversation.updated_at),
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "instructions": conversation.instructions,
        "deployment": _deployment(conversation.deployment),
        "messages": [message_data(m) for m in messages],
    }


def export_document(conversations: list[dict[str, Any]]) -> str:
    document = {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "conversations": conversations,
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def conversation_json(conversation: Conversation) -> str:
    data = conversation_data(conversation, conversation_export_messages(conversation))
    return export_document([data])


def account_json(conversations: QuerySet[Conversation]) -> str:
    """Every conversation of ``conversations`` in one document, in three queries however many
    there are: the conversations, the shape of their branches, then the messages shown."""
    rows = list(conversations.select_related("deployment").order_by("-updated_at", "-id"))
    by_conversation: dict[int, list[Message]] = {row.pk: [] for row in rows}
    for message in export_messages_of(rows).iterator(chunk_size=2000):
        by_conversation[message.conversation_id].append(message)
    return export_document([conversation_data(row, by_conversation[row.pk]) for row in rows])


def _markdown_message(message: Message) -> str:
    when = timezone.localtime(message.created_at).strftime("%Y-%m-%d %H:%M")
    if message.role == Message.Role.USER:
        heading = f"## You · {when}"
    else:
        name = message.deployment.name if message.deployment else "Assistant"
        model = f" ({message.deployment.model})" if message.deployment else ""
        heading = f"## {name}{model} · {when}"
    notes = []
    if message.status != Message.Status.COMPLETED:
        notes.append(f"*{message.get_status_display()}*")
    if message.error:
        notes.append(f"*{message.error}*")
    if message.total_tokens is not None:
        notes.append(
            f"*{message.input_tokens or 0} input · {message.output_tokens or 0} output tokens*"
        )
    if message.response_id:
        notes.append(f"*response `{message.response_id}`*")
    return "\n\n".join([heading, message.text, *notes]).rstrip() + "\n"


def conversation_markdown(conversation: Conversation) -> str:
    lines = [f"# {conversation.display_title}", ""]
    created = timezone.localtime(conversation.created_at).strftime("%Y-%m-%d %H:%M")
    lines.append(f"- Started: {created}")
    if conversation.deployment is not None:
        lines.append(
            f"- Model: {conversation.deployment.name} ({conversation.deployment.model}, "
            f"deployment `{conversation.deployment.deployment_name}`)"
        )
    if conversation.archived:
        lines.append("- Archived")
    if conversation.instructions:
        lines += ["", "**Instructions:**", "", conversation.instructions]
    parts = ["\n".join(lines) + "\n"]
    parts += [_markdown_message(m) for m in conversation_export_messages(conversation)]
    return "\n".join(parts)


def export_filename(conversation: Conversation, extension: str) -> str:
    """A name every system accepts: ASCII letters, digits and hyphens, and the id."""
    slug = slugify(conversation.display_title)[:60].strip("-") or "conversation"
    return f"conversation-{conversation.pk}-{slug}.{extension}"


def account_filename() -> str:
    return f"conversations-{timezone.now():%Y-%m-%d}.json"
