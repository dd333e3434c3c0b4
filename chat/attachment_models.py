"""Files a person attaches to a message: images and PDFs, kept in Django's storage.

Imported by ``chat.models``, where Django looks for the app's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
        IMAGE = "image", _("Image")
        PDF = "pdf", _("PDF")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("owner"),
    )
    conversation = models.ForeignKey(
        "chat.Conversation",
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="attachments",
        null=True,
        blank=True,
    )
    message = models.ForeignKey(
        "chat.Message",
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        related_name="attachments",
        null=True,
        blank=True,
    )
    token = models.CharField(_("token"), max_length=32, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    content_type = models.CharField(_("content type"), max_length=32)
    name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveIntegerField(_("size"))
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    file = models.FileField(_("file"), upload_to=_stored_name, max_length=200)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["created_at", "pk"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
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
