"""Queue the deletion of remote copies whenever their owner or conversation goes away, and
delete attached files with their rows.

The ledger's foreign keys to users and conversations are SET_NULL, so rows are queued before
the deletion (pre_delete), while they can still be found. Bulk deletes in the admin and the
cascade from a deleted user reach these receivers too; conversation_delete also queues its
rows itself, which leaves nothing for the receiver to do.
"""

from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from accounts.models import User
from accounts.signals import access_revoked
from chat import replies
from chat.ledger import ledger_queue_deletions
from chat.models import Attachment, Conversation, Message, StoredResponse


@receiver(pre_delete, sender=User)
def queue_deletions_of_removed_user(sender: type[User], instance: User, **kwargs: Any) -> None:
    ledger_queue_deletions(
        rows=StoredResponse.objects.filter(user=instance, state=StoredResponse.State.LIVE)
    )


@receiver(post_save, sender=User)
def queue_deletions_of_deactivated_user(
    sender: type[User], instance: User, created: bool, **kwargs: Any
) -> None:
    # An inactive user cannot chat, so saving one again finds nothing left to queue.
    if not created and not instance.is_active:
        ledger_queue_deletions(
            rows=StoredResponse.objects.filter(user=instance, state=StoredResponse.State.LIVE)
        )


@receiver(pre_delete, sender=Conversation)
def queue_deletions_of_deleted_conversation(
    sender: type[Conversation], instance: Conversation, **kwargs: Any
) -> None:
    ledger_queue_deletions(
        rows=StoredResponse.objects.filter(conversation=instance, state=StoredResponse.State.LIVE)
    )


@receiver(access_revoked)
def stop_replies_of_revoked_user(sender: type[User], user: User, **kwargs: Any) -> None:
    """A deactivated user, or one whose password changed, stops chatting at once: their replies
    in flight stop wherever they run, keeping the text so far (their copies on Azure are
    recorded, and queued for deletion when the user is inactive)."""
    in_flight = Message.objects.filter(
        conversation__owner=user, role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT
    ).values_list("conversation_id", "pk")
    for conversation_id, message_id in in_flight:
        async_to_sync(replies.reply_stop)(conversation_id=conversation_id, message_id=message_id)


@receiver(post_delete, sender=Attachment)
def delete_the_stored_file(sender: type[Attachment], instance: Attachment, **kwargs: Any) -> None:
    """An attachment's file goes with it (with its conversation, its message or its owner),
    once the deletion is committed: a rolled-back delete keeps the file its row names."""
    storage, name = instance.file.storage, instance.file.name
    if name:
        transaction.on_commit(lambda: storage.delete(name))
