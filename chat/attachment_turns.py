"""Attachments in a turn: the drafts a message carries (the sender's own, within the limits),
binding them to the message in the turn's transaction, and the content a user message sends.

A user message without files is sent as its text, as before; with files, as one ``user``
item whose content is its text (``input_text``) and a part per file (``chat.attachments``).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy

from accounts.models import User
from chat.attachments import AttachmentRefused, attachment_input_part, attachments_check
from chat.models import Attachment, Deployment, Message

UNAVAILABLE = gettext_lazy(
    "A file attached to this message is no longer available (removed, or already sent). "
    "Remove it and attach it again."
)


def attachments_for_turn(
    *, user: User, ids: Sequence[int], deployment: Deployment | None
) -> list[Attachment]:
    """The drafts ``ids`` names, locked for the turn; refused (``AttachmentRefused``) when one
    is not ``user``'s own draft or they do not fit the message's limits."""
    if not ids:
        return []
    wanted = set(ids)
    attachments = list(
        Attachment.objects.for_user(user)
        .drafts()
        .select_for_update()
        .filter(pk__in=wanted)
        .order_by("created_at", "pk")
    )
    if len(attachments) != len(wanted):
        raise AttachmentRefused(UNAVAILABLE)
    attachments_check(attachments, deployment=deployment)
    return attachments


def attachments_bind(attachments: list[Attachment], message: Message) -> None:
    """The drafts become the message's, in one query."""
    if not attachments:
        return
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(
        message=message, conversation=message.conversation
    )
    for attachment in attachments:
        attachment.message, attachment.conversation = message, message.conversation


def attachments_copy(
    *, source_id: int, message: Message, deployment: Deployment | None
) -> list[Attachment]:
    """A new version of a message carries the files of the one it replaces (checked again:
    the model may have changed): copies of its own, so that each message's files go with it,
    and their stored files with them."""
    originals = list(Attachment.objects.filter(message_id=source_id))
    attachments_check(originals, deployment=deployment)
    copies = []
    for original in originals:
        copy = Attachment(
            owner_id=original.owner_id,
            conversation=message.conversation,
            message=message,
            token=secrets.token_hex(16),
            kind=original.kind,
            content_type=original.content_type,
            name=original.name,
            size=original.size,
            width=original.width,
            height=original.height,
        )
        with original.file.open("rb") as stored:
            copy.file.save(original.name, ContentFile(stored.read()), save=False)
        copies.append(copy)
    return Attachment.objects.bulk_create(copies)


def attachments_known(message: Message, attachments: list[Attachment]) -> None:
    """Give a message just saved its files as if they were prefetched, with no query: its
    turn is rendered from async code, where no query may run. (The cache is where Django's
    ``prefetch_related`` keeps a message's ``attachments``.)"""
    files = Attachment.objects.filter(message=message)
    files._result_cache = list(attachments)
    files._prefetch_done = True  # type: ignore[attr-defined]
    message._prefetched_objects_cache = {"attachments": files}  # type: ignore[attr-defined]


def attachments_by_message(message_ids: Iterable[int]) -> dict[int, list[Attachment]]:
    """The files of these messages, in one query."""
    by_message: dict[int, list[Attachment]] = defaultdict(list)
    for attachment in Attachment.objects.filter(message_id__in=list(message_ids)):
        assert attachment.message_id is not None
        by_message[attachment.message_id].append(attachment)
    return dict(by_message)


def user_content(text: str, attachments: Sequence[Attachment]) -> str | list[dict[str, Any]]:
    """What a user message sends as its ``content``: its text, or with files, content parts."""
    if not attachments:
        return text
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
    return parts + [attachment_input_part(attachment) for attachment in attachments]


def user_input(message: Message) -> str | list[dict[str, Any]]:
    """The new user message of a turn that continues a stored chain: its text alone, or one
    ``user`` item with its files (read from the prefetched ``attachments`` when there)."""
    content = user_content(message.text, list(message.attachments.all()))
    if isinstance(content, str):
        return content
    return [{"role": "user", "content": content}]
