"""Reads of a conversation's branches: which messages the branch shown holds, and each
message's place among its siblings (the arrows and "2 / 3" between them).

A conversation is a tree of messages (``Message.parent``): editing a message or regenerating a
reply adds a sibling, and the branch shown runs from the root down to the newest message under
``Conversation.current_leaf``. The tree is read in one query of ids; only the branch's own
messages are loaded whole. Callers pass a conversation they already hold through its owner's
queryset.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from chat.models import Conversation, Deployment, Message


@dataclass(frozen=True, slots=True)
class Tree:
    """The shape of one conversation: each message's parent and children, oldest first."""

    parent: dict[int, int | None]
    children: dict[int | None, list[int]] = field(default_factory=dict)

    def newest_under(self, message_id: int) -> int:
        """The newest message at the end of the newest branches under ``message_id``."""
        while kids := self.children.get(message_id):
            message_id = kids[-1]
        return message_id

    def path_to(self, message_id: int) -> list[int]:
        """The messages from the root to ``message_id``, in order."""
        path: list[int] = []
        at: int | None = message_id
        while at is not None:
            path.append(at)
            at = self.parent.get(at)
        return path[::-1]

    def siblings(self, message_id: int) -> list[int]:
        return self.children.get(self.parent.get(message_id), [])

    def leaf(self, conversation: Conversation) -> int | None:
        """The end of the branch shown."""
        start = conversation.current_leaf_id
        if start is None or start not in self.parent:
            roots = self.children.get(None)
            if not roots:
                return None
            start = roots[-1]
        return self.newest_under(start)


def tree_of(rows: list[tuple[int, int | None, bool]]) -> Tree:
    """From ``(id, parent_id, branch_root)`` in id order. A row without a parent follows the
    row before it unless it is a branch root (rows written by code that knows no branches)."""
    parent: dict[int, int | None] = {}
    children: dict[int | None, list[int]] = defaultdict(list)
    previous: int | None = None
    for message_id, parent_id, branch_root in rows:
        follows = parent_id if parent_id is not None else (None if branch_root else previous)
        parent[message_id] = follows
        children[follows].append(message_id)
        previous = message_id
    return Tree(parent, dict(children))


def conversation_tree(conversation: Conversation) -> Tree:
    rows = Message.objects.filter(conversation=conversation).order_by("id")
    return tree_of(list(rows.values_list("id", "parent_id", "branch_root")))


def branch_path(conversation: Conversation, tree: Tree | None = None) -> list[int]:
    """The ids of the branch shown, oldest first."""
    tree = tree or conversation_tree(conversation)
    leaf = tree.leaf(conversation)
    return tree.path_to(leaf) if leaf is not None else []


def mark_branches(messages: list[Message], tree: Tree) -> list[Message]:
    """Give each message its place among its siblings, for the arrows between them."""
    for message in messages:
        siblings = tree.siblings(message.pk)
        position = siblings.index(message.pk) if message.pk in siblings else 0
        message.branch_count = len(siblings)  # type: ignore[attr-defined]
        message.branch_number = position + 1  # type: ignore[attr-defined]
        message.branch_previous = (  # type: ignore[attr-defined]
            siblings[position - 1] if position > 0 else None
        )
        message.branch_next = (  # type: ignore[attr-defined]
            siblings[position + 1] if position + 1 < len(siblings) else None
        )
    return messages


def _loaded(conversation: Conversation, ids: list[int], tree: Tree) -> list[Message]:
    rows = Message.objects.filter(conversation=conversation, pk__in=ids)
    rows = rows.select_related("deployment").prefetch_related("attachments")
    return mark_branches(list(rows.order_by("id")), tree)


def conversation_branch_messages(conversation: Conversation) -> list[Message]:
    """Every message of the branch shown, oldest first (what the page shows, whole)."""
    tree = conversation_tree(conversation)
    return _loaded(conversation, branch_path(conversation, tree), tree)


def branch_page(
    conversation: Conversation, *, before: int | None = None
) -> tuple[list[Message], bool]:
    """The latest messages of the branch shown (before the message ``before``, if given),
    oldest first, and whether earlier ones exist."""
    tree = conversation_tree(conversation)
    path = branch_path(conversation, tree)
    if before is not None:
        path = [message_id for message_id in path if message_id < before]
    limit = settings.CHAT_MESSAGES_PER_PAGE
    return _loaded(conversation, path[-limit:], tree), len(path) > limit


def usable_deployments(user: User) -> QuerySet[Deployment]:
    """The deployments ``user`` may pick for a conversation's next turn: enabled, and open to
    everyone or limited to a group of theirs."""
    return Deployment.objects.usable_by(user).order_by("-is_default", "name")


def deployment_default(*, user: User) -> Deployment | None:
    return Deployment.objects.usable_by(user).order_by("-is_default", "priority", "pk").first()


def deployment_for(conversation: Conversation, *, user: User) -> Deployment | None:
    """The deployment that answers the conversation's next turn: its own while enabled, else
    the default of those the user may use. (Whether the user may still use the conversation's
    own is the turn's to check: the conversation stays readable either way.)"""
    if conversation.deployment is not None and conversation.deployment.enabled:
        return conversation.deployment
    return deployment_default(user=user)
