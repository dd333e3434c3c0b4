"""What a conversation's socket shows a tab: on (re)connecting, what it missed; when another
tab starts a turn, that turn; when another process finishes a reply, how it ended. Synchronous
reads, run on the database thread, each rendering the page's own partials."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from chat import fragments
from chat.feedback import feedback_attach
from chat.models import Conversation, Message
from chat.selectors import branch_page, branch_path, conversation_tree, mark_branches


def owned_conversation(user: Any, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.for_user(user)
        .select_related("deployment")
        .filter(pk=conversation_id)
        .first()
    )


def catch_up(conversation: Conversation, after: int | None) -> tuple[str, Message | None]:
    """What a tab showing the branch up to ``after`` has missed, and the reply still in flight.

    Without ``after`` (a page just rendered), only the branch's latest reply: how it ended, if
    it did. A tab whose last message is not on the branch shown gets the branch whole."""
    tree = conversation_tree(conversation)
    path = branch_path(conversation, tree)
    rows = (
        Message.objects.filter(conversation=conversation)
        .select_related("deployment")
        .prefetch_related("attachments")
    )
    if after is None:
        latest = rows.filter(pk__in=path[-2:], role=Message.Role.ASSISTANT).order_by("-id").first()
        if latest is None or latest.in_flight:
            return "", latest
        mark_branches([latest], tree)
        feedback_attach([latest], user_id=conversation.owner_id)
        return fragments.message(latest) + fragments.reply_controls(
            conversation, in_flight_message=None
        ), None
    if after not in path:
        return branch_fragment(conversation)
    shown_ids = [message_id for message_id in path if message_id >= after]
    missed = mark_branches(
        list(rows.filter(pk__in=shown_ids[: settings.CHAT_MESSAGES_PER_PAGE]).order_by("id")), tree
    )
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


def branch_fragment(conversation: Conversation) -> tuple[str, Message | None]:
    """The branch shown, in place of whatever the tab shows, and its reply in flight."""
    conversation.refresh_from_db(fields=["current_leaf"])
    messages, has_earlier = branch_page(conversation)
    feedback_attach(messages, user_id=conversation.owner_id)
    in_flight = next((m for m in reversed(messages) if m.in_flight), None)
    shown = fragments.branch(
        conversation, messages, has_earlier=has_earlier, in_flight_message=in_flight
    )
    return shown, in_flight


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
    mark_branches([message], conversation_tree(message.conversation))
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
    messages = list(
        Message.objects.filter(pk__in=message_ids, conversation=conversation).prefetch_related(
            "attachments"
        )
    )
    return turn_fragment(conversation, messages, replace=replace)
