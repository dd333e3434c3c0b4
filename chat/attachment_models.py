"""Files a person attaches to a message: images and PDFs, kept in Django's storage.

Imported by ``chat.models``, where Django looks for the app's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.models import User


class AttachmentQuerySet(models.QuerySet["Attachment"]):
    def for_user(self, user: User) -> AttachmentQuerySet:
        return self.filter(owner=user)

    def drafts(self) -> AttachmentQuerySet:
        """Uploaded in a composer and not sent (yet)."""
        return self.filter(message=None)


def _stored_name(attachment: Attachment, filename: str) -> str:
    # Never the person's file name on disk: a random name under the owner's folder.
    return f"attachments/{attachment.owner_id}/{attachment.token}{attachment.extension}"


class Attachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        PDF = "pdf", "PDF"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    conversation = models.ForeignKey(
        "chat.Conversation",
        on_delete=models.CASCADE,
        related_name="attachments",
        null=True,
        blank=True,
    )
    message = models.ForeignKey(
        "chat.Message",
        on_delete=models.CASCADE,
        related_name="attachments",
        null=True,
        blank=True,
    )
    token = models.CharField(max_length=32, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    content_type = models.CharField(max_length=32)
    name = models.CharField("file name", max_length=200)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to=_stored_name, max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["created_at", "pk"]
        indexes: ClassVar = [models.Index(fields=["owner", "message"], name="attachment_drafts")]

    def __str__(self) -> str:
        return self.name

    @property
    def extension(self) -> str:
        return {
            "image/png": ".png",
            "image/jpeg": ".jpg",
            "image/webp": ".webp",
            "image/gif": ".gif",
            "application/pdf": ".pdf",
        }[self.content_type]
