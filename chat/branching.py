"""The steps a new branch takes: where it grows from, which stored response it continues, the
history it sends when there is none, and its messages' places among their siblings. Used by the
turn services (``chat.services``) inside their own transactions."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy

from chat.attachment_turns import attachments_by_message, user_content
from chat.deployment_models import resource_url
from chat.models import (
    Attachment,
    Conversation,
    Deployment,
    Message,
    StoredResponse,
)
from chat.selectors import conversation_tree, mark_branches, tree_of


class BranchBusy(Exception):
    """A reply is being written: the branch shown stays until it ends."""

    message = gettext_lazy("A reply is still being written. Wait for it to finish, then switch.")


def branch_continue_after(conversation: Conversation, message_id: int | None) -> None:
    """Make the conversation's head the stored response of ``message_id`` (the reply a branch
    grows from) while Azure still keeps it; else no head, and the next request sends the
    branch's history. The caller saves the conversation."""
    head = None
    if message_id is not None:
        live_copies = StoredResponse.objects.filter(
            conversation=conversation, state=StoredResponse.State.LIVE
        ).values("response_id")
        head = (
            Message.objects.filter(
                pk=message_id,
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                status=Message.Status.COMPLETED,
                deployment__store_policy=Deployment.StorePolicy.STATEFUL,
                response_id__in=live_copies,
            )
            .select_related("deployment")
            .first()
        )
    conversation.head_response_id = head.response_id if head else ""
    conversation.head_deployment = head.deployment if head else None
    conversation.head_created_at = (head.completed_at or head.created_at) if head else None


def branch_fork_of(conversation: Conversation, message_id: int) -> tuple[int | None, bool] | None:
    """Where a new version of the person's message ``message_id`` goes: beside it, after the
    reply it followed, which the new branch continues. ``(parent, is a branch root)``; None
    when it is not a message of the person's in this conversation."""
    edited = Message.objects.filter(
        pk=message_id, conversation=conversation, role=Message.Role.USER
    ).first()
    if edited is None:
        return None
    parent_id = conversation_tree(conversation).parent.get(edited.pk)
    branch_continue_after(conversation, parent_id)
    return parent_id, parent_id is None


def branch_mark(conversation: Conversation, *messages: Message) -> None:
    """A turn's messages with their place among their siblings (the arrows between them)."""
    mark_branches(list(messages), conversation_tree(conversation))


def branch_history(
    *, conversation_id: int, question_id: int, deployment: Deployment
) -> list[dict[str, Any]]:
    """The history of the branch that ends at ``question_id``, in one query (and one more for
    the files its messages carry, if any): what a request to ``deployment`` sends when no
    stored response continues it.

    A reply's sealed reasoning items go back before its text, verbatim and in order, when the
    request goes to a reasoning model on the resource that sealed them (no other can open
    them): that is how a stateless deployment keeps the model's context."""
    rows = list(
        Message.objects.filter(conversation_id=conversation_id, pk__lte=question_id)
        .order_by("id")
        .annotate(has_files=Exists(Attachment.objects.filter(message=OuterRef("pk"))))
        .values_list(
            "id",
            "parent_id",
            "branch_root",
            "role",
            "text",
            "status",
            "has_files",
            "reasoning_items",
            "deployment__endpoint",
        )
    )
    branch = set(tree_of([(row[0], row[1], row[2]) for row in rows]).path_to(question_id))
    left_out = (*Message.IN_FLIGHT, Message.Status.FAILED)
    with_files = [row[0] for row in rows if row[0] in branch and row[6]]
    files = attachments_by_message(with_files) if with_files else {}
    return [
        item
        for message_id, _, _, role, text, status, _, reasoning_items, endpoint in rows
        if message_id in branch
        and (text or message_id in files)
        and not (role == Message.Role.ASSISTANT and status in left_out)
        for item in (
            *_reasoning_sent_back(reasoning_items, endpoint, deployment),
            {
                "role": role,
                "content": user_content(text, files[message_id]) if message_id in files else text,
            },
        )
    ]


def _reasoning_sent_back(
    items: list[dict[str, Any]], endpoint: str | None, deployment: Deployment
) -> list[dict[str, Any]]:
    """A reply's sealed reasoning items, when ``deployment`` can open them."""
    if not items or not deployment.reasons or endpoint is None:
        return []
    return items if resource_url(endpoint) == deployment.base_url else []


def branch_show(*, conversation: Conversation, message_id: int) -> Conversation:
    """Show the branch through ``message_id`` (its newest end); the next turn continues it.

    Refused while a reply is being written (``BranchBusy``), so that a reply ends on the branch
    it began on; ``Message.DoesNotExist`` for a message not in this conversation."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .filter(pk=conversation.pk, owner_id=conversation.owner_id)
            .get()
        )
        tree = conversation_tree(conversation)
        if message_id not in tree.parent:
            raise Message.DoesNotExist(message_id)
        writing = Message.objects.filter(
            conversation=conversation,
            status__in=Message.IN_FLIGHT,
            alive_until__gt=timezone.now(),
        )
        if writing.exists():
            raise BranchBusy(conversation.pk)
        leaf = tree.newest_under(message_id)
        branch_continue_after(conversation, leaf)
        conversation.current_leaf_id = leaf
        conversation.save(
            update_fields=["current_leaf", "head_response_id", "head_deployment", "head_created_at"]
        )
    return conversation
