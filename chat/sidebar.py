"""The sidebar's conversations: pinned first, archived ones apart, and the actions on them."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from accounts.models import User
from chat.models import Conversation

LIST_FIELDS = ("pk", "title", "updated_at", "pinned", "archived")


def sidebar_conversations(*, owner: User, query: str, archived: bool) -> QuerySet[Conversation]:
    """What the sidebar lists. A search finds archived conversations too (they are marked);
    otherwise the list holds the ones in use, pinned on top, or only the archived ones."""
    conversations = Conversation.objects.search(owner=owner, query=query).only(*LIST_FIELDS)
    if query:
        return conversations.order_by("-updated_at", "-id")
    if archived:
        return conversations.filter(archived=True).order_by("-updated_at", "-id")
    return conversations.filter(archived=False).order_by("-pinned", "-updated_at", "-id")


def sidebar_page(
    *, owner: User, query: str, archived: bool, number: str | int | None
) -> Page[Conversation]:
    conversations = sidebar_conversations(owner=owner, query=query, archived=archived)
    paginator = Paginator(conversations, settings.CHAT_CONVERSATIONS_PER_PAGE)
    return paginator.get_page(number)


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    conversation.pinned = pinned
    conversation.save(update_fields=["pinned"])
    return conversation


def conversation_archive(*, conversation: Conversation, archived: bool) -> Conversation:
    conversation.archived = archived
    conversation.save(update_fields=["archived"])
    return conversation
