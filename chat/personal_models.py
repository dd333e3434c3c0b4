"""What people keep beside their conversations: feedback on replies, and presets (assistants).

Imported by ``chat.models``, where Django looks for the app's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

if TYPE_CHECKING:
    from accounts.models import User


class Feedback(models.Model):
    """A person's thumbs up or down on an assistant reply: one per reply and person.

    The comment is written for the administrators; the conversation's own words reach them only
    when ``share_conversation`` is ticked.
    """

    class Rating(models.TextChoices):
        UP = "up", _("Thumbs up")
        DOWN = "down", _("Thumbs down")

    message = models.ForeignKey(
        "chat.Message", on_delete=models.CASCADE, related_name="feedback", verbose_name=_("message")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="feedback",
        verbose_name=_("user"),
    )
    rating = models.CharField(_("rating"), max_length=4, choices=Rating.choices)
    comment = models.TextField(_("comment"), blank=True)
    share_conversation = models.BooleanField(
        _("conversation shared"),
        default=False,
        help_text=_("The person let the administrators read this conversation."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, db_index=True)

    class Meta:
        ordering: ClassVar = ["-updated_at", "-id"]
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["message", "user"], name="one_feedback_per_reply")
        ]

    def __str__(self) -> str:
        return gettext("%(rating)s on message %(id)s") % {
            "rating": self.get_rating_display(),
            "id": self.message_id,
        }


class PresetQuerySet(models.QuerySet["Preset"]):
    def for_user(self, user: User) -> PresetQuerySet:
        """The presets ``user`` may pick: everyone's (made by admins) and their own."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(owner__isnull=True) | Q(owner=user))

    def owned_by(self, user: User) -> PresetQuerySet:
        """Only ``user``'s personal presets: the ones they may delete."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)


class Preset(models.Model):
    """An assistant to start a chat with: a deployment and its instructions.

    Without an owner it is offered to everyone (administrators define those); with one, it is
    that person's own, saved from a conversation, and visible to nobody else.
    """

    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    deployment = models.ForeignKey(
        "chat.Deployment",
        verbose_name=_("deployment"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="presets",
        help_text=_("Empty, or switched off, means the default deployment."),
    )
    instructions = models.TextField(_("instructions"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="presets",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = PresetQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["name", "id"]
        verbose_name = _("assistant")
        verbose_name_plural = _("assistants")

    def __str__(self) -> str:
        # Personal presets are made from a person's words: only shared ones show their name.
        return (
            self.name
            if self.owner_id is None
            else gettext("Personal preset %(id)s") % {"id": self.pk}
        )
