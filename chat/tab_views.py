"""What a conversation's socket shows a tab: on (re)connecting, what it missed; when another
tab starts a turn, that turn; when another process finishes a reply, how it ended. Synchronous
reads, run on the database thread, each rendering the page's own partials."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from chat import fragments
from chat.feedback import feedback_attach
from chat.models import Conversation, Message


def owned_conversation(user: Any, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.for_user(user)
        .select_related("deployment")
        .filter(pk=conversation_id)
        .first()
    )


def catch_up(conversation: Conversation, after: int | None) -> tuple[str, Message | None]:
    """What a tab showing messages up to ``after`` has missed, and the reply still in flight.

    Without ``after`` (a page just rendered), only the latest reply: how it ended, if it did."""
    rows = conversation.messages.select_related("deployment").order_by("-id")
    if after is None:
        latest = rows.filter(role=Message.Role.ASSISTANT).first()
        if latest is None or latest.in_flight:
            return "", latest
        feedback_attach([latest], user_id=conversation.owner_id)
        return fragments.message(latest) + fragments.reply_controls(
            conversation, in_flight_message=None
        ), None
    missed = list(rows.filter(pk__gte=after)[: settings.CHAT_MESSAGES_PER_PAGE])[::-1]
    feedback_attach(missed, user_id=conversation.owner_id)
    shown = "".join(fragments.message(m) for m in missed if m.pk == after)
    new = [m for m in missed if m.pk > after]
    in_flight = next((m for m in reversed(missed) if m.in_flight), None)
    return (
        shown
        + (fragments.appended_messages(*new) if new else "")
        + fragments.reply_controls(conversation, in_flight_message=in_flight),
        in_flight,
    )


def finished_message(message_id: int, conversation_id: int) -> str | None:
    """The message's final form with the controls to match, once it is no longer in flight."""
    message = (
        Message.objects.filter(pk=message_id, conversation_id=conversation_id)
        .select_related("deployment", "conversation")
        .first()
    )
    if message is None:
        return ""
    if message.in_flight:
        return None
    return fragments.message(message) + fragments.reply_controls(
        message.conversation, in_flight_message=None
    )


def turn_fragment(conversation: Conversation, messages: list[Message], *, replace: bool) -> str:
    """A turn's messages, appended (a new turn) or replacing their old selves (a retry, or a
    send the page made twice), and the reply controls to match."""
    if replace:
        shown = "".join(fragments.message(m) for m in messages)
    else:
        shown = fragments.appended_messages(*messages)
    in_flight = next((m for m in messages if m.in_flight), None)
    return shown + fragments.reply_controls(conversation, in_flight_message=in_flight)


def turn_started(conversation: Conversation, message_ids: list[int], replace: bool) -> str:
    messages = list(Message.objects.filter(pk__in=message_ids, conversation=conversation))
    return turn_fragment(conversation, messages, replace=replace)
