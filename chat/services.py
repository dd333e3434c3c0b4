"""Chat operations with side effects, shared by the HTTP views, the consumer, admin and tasks.

Each function is keyword-only and synchronous; async callers wrap them with
``database_sync_to_async`` so every database touch happens on Django's thread.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from chat.attachment_turns import (
    attachments_bind,
    attachments_copy,
    attachments_for_turn,
    attachments_known,
    user_input,
)
from chat.attachments import AttachmentRefused
from chat.branching import branch_continue_after, branch_fork_of, branch_history, branch_mark
from chat.models import (
    Attachment,
    Conversation,
    Deployment,
    Message,
    StoredResponse,
)
from chat.row_insert import row_insert
from chat.saving import reply_lease_until
from chat.selectors import conversation_tree, deployment_for
from chat.turn_checks import (
    SessionEnded as SessionEnded,
    TurnRefused as TurnRefused,
    abandon_if_orphaned,
    lock_conversation,
    refuse_not_allowed,
    refuse_over_quota,
    refuse_over_rate_limit,
    refuse_while_in_flight,
)

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60


@dataclass(frozen=True, slots=True)
class Turn:
    conversation: Conversation
    deployment: Deployment | None
    user_message: Message
    assistant_message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class ReplyInput:
    input: str | list[dict[str, Any]]
    previous_response_id: str | None
    context_rebuilt: bool


def title_from_text(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first_line) <= TITLE_LENGTH:
        return first_line
    cut = first_line[:TITLE_LENGTH].rsplit(" ", 1)[0] or first_line[:TITLE_LENGTH]
    return cut.rstrip(" ,.;:") + "…"


def new_client_id() -> uuid.UUID:
    return uuid.uuid4()


def conversation_create(
    *, owner: User, deployment: Deployment | None, instructions: str = ""
) -> Conversation:
    return Conversation.objects.create(
        owner=owner, deployment=deployment, instructions=instructions.strip()
    )


def conversation_start(
    *,
    owner: User,
    deployment: Deployment | None,
    instructions: str,
    text: str,
    client_id: uuid.UUID | None,
    session_key: str | None,
    attachment_ids: Sequence[int] = (),
) -> Turn:
    """A new conversation and its first turn, together: a refused first turn leaves no empty
    conversation behind."""
    with transaction.atomic():
        conversation = conversation_create(
            owner=owner, deployment=deployment, instructions=instructions
        )
        return turn_start(
            user=owner,
            conversation_id=conversation.pk,
            text=text,
            client_id=client_id,
            session_key=session_key,
            attachment_ids=attachment_ids,
        )


def conversation_switch_model(*, conversation: Conversation, deployment: Deployment) -> None:
    """The conversation's next turns go to ``deployment`` (one the person may use)."""
    Conversation.objects.filter(pk=conversation.pk).update(deployment=deployment)
    conversation.deployment = deployment


def conversation_set_reasoning_effort(*, conversation: Conversation, effort: str) -> None:
    """How hard a reasoning model thinks in the conversation's next turns ("" for the
    deployment's default)."""
    Conversation.objects.filter(pk=conversation.pk).update(reasoning_effort=effort)
    conversation.reasoning_effort = effort


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title"])
    return conversation


def conversation_set_instructions(*, conversation: Conversation, instructions: str) -> None:
    """New instructions for the conversation's next turns. Each request carries them, so a
    stored chain (previous_response_id) continues under them."""
    conversation.instructions = instructions.strip()
    conversation.save(update_fields=["instructions"])


def conversation_delete(*, conversation: Conversation, deleted_by: User | None = None) -> int:
    """Delete a conversation locally at once and queue the deletion of its copies on Azure.

    Returns how many remote copies were queued.
    """
    from chat.ledger import ledger_queue_deletions

    with transaction.atomic():
        rows = StoredResponse.objects.filter(conversation=conversation)
        queued = ledger_queue_deletions(rows=rows, requested_by=deleted_by)
        conversation.delete()
    return queued


def turn_start(
    *,
    user: User,
    conversation_id: int,
    text: str,
    client_id: uuid.UUID | None,
    session_key: str | None,
    edit_of: int | None = None,
    deployment: Deployment | None = None,
    attachment_ids: Sequence[int] = (),
) -> Turn:
    """Save the user's message and a pending reply in one transaction, before anything else.

    With ``deployment`` (the composer's model picker) this turn and the next go to it. The
    message follows the branch shown; with ``edit_of`` (one of the person's messages in
    this conversation) it is a new version of that message instead: a sibling of it, on a new
    branch that continues from the reply before it.

    ``attachment_ids``: the person's draft attachments the message carries (another's, or one
    already sent, refuses the turn); a new version carries the files of the one it replaces.

    A repeated ``client_id`` (double click, replay after reconnect) returns the existing turn.
    """
    refuse_over_rate_limit(user=user)
    now = timezone.now()
    with transaction.atomic():
        locked = lock_conversation(
            user=user,
            conversation_id=conversation_id,
            session_key=session_key,
            client_id=client_id,
            now=now,
        )
        conversation = locked.conversation
        if locked.repeated_id is not None:
            repeated = Message.objects.get(pk=locked.repeated_id)
            reply = (
                Message.objects.filter(reply_to=repeated)
                .select_related("deployment")
                .order_by("-id")
                .first()
            )
            if reply is not None:
                prefetch_related_objects([repeated], "attachments")
                return Turn(
                    conversation, deployment_for(conversation, user=user), repeated, reply, False
                )
        refuse_while_in_flight(locked, now=now)
        fields = ["updated_at", "current_leaf"]
        if deployment is not None and deployment.pk != conversation.deployment_id:
            conversation.deployment = deployment
            fields.append("deployment")
        deployment = deployment_for(conversation, user=user)
        refuse_not_allowed(user=user, conversation=conversation, deployment=deployment)
        refuse_over_quota(user=user, deployment=deployment)
        attachments = _attachments(
            lambda: attachments_for_turn(user=user, ids=attachment_ids, deployment=deployment)
        )
        # The branch shown goes on; a row written without branches follows the one before it.
        parent_id, branch_root = conversation.current_leaf_id, False
        if edit_of is not None:
            fork = branch_fork_of(conversation, edit_of)
            if fork is None:
                raise TurnRefused(gettext("That message cannot be edited."), code="not_editable")
            parent_id, branch_root = fork
            fields += ["head_response_id", "head_deployment", "head_created_at"]
        user_message = Message(
            conversation=conversation,
            role=Message.Role.USER,
            text=text,
            client_id=client_id,
            created_at=now,
            parent_id=parent_id,
            branch_root=branch_root,
        )
        row_insert(user_message)
        attachments_bind(attachments, user_message)
        if edit_of is not None:
            attachments = _attachments(
                lambda: attachments_copy(
                    source_id=edit_of, message=user_message, deployment=deployment
                )
            )
        assistant_message = _pending_reply(conversation, user_message, deployment, now=now)
        conversation.updated_at = now
        conversation.current_leaf = assistant_message
        if not conversation.title:
            conversation.title = title_from_text(text) or (
                attachments[0].name if attachments else ""
            )
            fields.append("title")
        conversation.save(update_fields=fields)
    if edit_of is not None:
        branch_mark(conversation, user_message, assistant_message)
    attachments_known(user_message, attachments)
    return Turn(conversation, deployment, user_message, assistant_message, True)


def _attachments(take: Callable[[], list[Attachment]]) -> list[Attachment]:
    try:
        return take()
    except AttachmentRefused as refused:
        raise TurnRefused(refused.message, code="attachment_refused") from refused


def _pending_reply(
    conversation: Conversation, question: Message, deployment: Deployment | None, *, now: datetime
) -> Message:
    reply = Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        reply_to=question,
        parent=question,
        deployment=deployment,
        created_at=now,
        alive_until=reply_lease_until(now),
    )
    row_insert(reply)
    return reply


def turn_retry(
    *, user: User, conversation_id: int, message_id: int, session_key: str | None
) -> Turn:
    """Ask again for the conversation's last reply when it failed, stopped or was cut short.

    A retry costs what a new message costs: the same rate limit and daily quota."""
    now = timezone.now()
    with transaction.atomic():
        conversation = lock_conversation(
            user=user, conversation_id=conversation_id, session_key=session_key
        ).conversation
        leaf = conversation_tree(conversation).leaf(conversation) or 0
        last = (
            Message.objects.filter(conversation=conversation, pk=leaf)
            .select_related("reply_to")
            .first()
        )
        if last is None or last.pk != message_id or last.role != Message.Role.ASSISTANT:
            raise TurnRefused(gettext("Only the latest reply can be retried."), code="not_latest")
        if last.in_flight and not abandon_if_orphaned(last, now=now):
            raise TurnRefused(gettext("This reply is still being written."), code="reply_in_flight")
        if last.reply_to is None:
            raise TurnRefused(
                gettext("This reply has no question to ask again."), code="no_question"
            )
        deployment = deployment_for(conversation, user=user)
        refuse_not_allowed(user=user, conversation=conversation, deployment=deployment)
        refuse_over_quota(user=user, deployment=deployment)
        refuse_over_rate_limit(user=user)
        last.status = Message.Status.PENDING
        last.text = last.html = last.error = last.error_code = ""
        last.response_id = last.request_id = ""
        last.context_rebuilt = False
        last.input_tokens = last.output_tokens = last.reasoning_tokens = None
        last.cached_tokens = last.first_token_ms = last.duration_ms = None
        last.deployment = deployment
        last.created_at = now
        last.completed_at = None
        last.alive_until = reply_lease_until(now)
        last.save()
        conversation.updated_at = now
        conversation.save(update_fields=["updated_at"])
    branch_mark(conversation, last)
    return Turn(conversation, deployment, last.reply_to, last, True)


def turn_regenerate(
    *, user: User, conversation_id: int, message_id: int, session_key: str | None
) -> Turn:
    """Ask again for any reply of the conversation: a new reply beside it, on a new branch that
    continues from the reply before its question; the old one is kept.

    Costs what a new message costs: the same rate limit and daily quota."""
    now = timezone.now()
    with transaction.atomic():
        locked = lock_conversation(
            user=user, conversation_id=conversation_id, session_key=session_key
        )
        conversation = locked.conversation
        old = (
            Message.objects.filter(
                pk=message_id, conversation=conversation, role=Message.Role.ASSISTANT
            )
            .select_related("reply_to")
            .first()
        )
        if old is None or old.reply_to is None:
            raise TurnRefused(gettext("That reply cannot be regenerated."), code="not_regenerable")
        refuse_while_in_flight(locked, now=now)
        deployment = deployment_for(conversation, user=user)
        refuse_not_allowed(user=user, conversation=conversation, deployment=deployment)
        refuse_over_quota(user=user, deployment=deployment)
        refuse_over_rate_limit(user=user)
        question = old.reply_to
        branch_continue_after(conversation, conversation_tree(conversation).parent.get(question.pk))
        reply = _pending_reply(conversation, question, deployment, now=now)
        conversation.updated_at = now
        conversation.current_leaf = reply
        conversation.save(
            update_fields=[
                "updated_at",
                "current_leaf",
                "head_response_id",
                "head_deployment",
                "head_created_at",
            ]
        )
    branch_mark(conversation, reply)
    return Turn(conversation, deployment, question, reply, True)


def reply_input(
    *, conversation: Conversation, deployment: Deployment, turn: Turn, force_rebuild: bool = False
) -> ReplyInput:
    """Continue from the stored head while the chain is usable, else rebuild from our history."""
    if not force_rebuild and conversation.head_usable_for(deployment):
        return ReplyInput(user_input(turn.user_message), conversation.head_response_id, False)
    return ReplyInput(
        history_input(turn=turn, deployment=deployment),
        None,
        bool(conversation.head_response_id),
    )


def history_input(*, turn: Turn, deployment: Deployment) -> list[dict[str, Any]]:
    """The history of this turn's branch up to its question, for ``deployment``, in one query."""
    return branch_history(
        conversation_id=turn.conversation.pk,
        question_id=turn.user_message.pk,
        deployment=deployment,
    )
