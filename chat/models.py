from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from chat.catalog import REASONING_EFFORT_CHOICES
from chat.deployment_models import Deployment as Deployment

if TYPE_CHECKING:
    from accounts.models import User


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def for_user(self, user: User) -> ConversationQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def search(self, *, owner: User, query: str) -> ConversationQuerySet:
        """``owner``'s conversations whose title or messages contain ``query`` (any case).

        The messages are narrowed to the owner's in the subquery itself, so the search never
        reads another person's messages. On PostgreSQL both ``icontains`` lookups are served by
        trigram indexes on UPPER(text) and UPPER(title) (migration 0005).
        """
        conversations = self.for_user(owner)
        query = query.strip()
        if not query:
            return conversations
        matching_messages = Message.objects.filter(
            conversation__owner=owner, text__icontains=query
        ).values("conversation_id")
        return conversations.filter(Q(title__icontains=query) | Q(pk__in=matching_messages))


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("owner"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    deployment = models.ForeignKey(
        Deployment,
        on_delete=models.SET_NULL,
        null=True,
        related_name="conversations",
        verbose_name=_("deployment"),
    )
    instructions = models.TextField(_("instructions"), blank=True)
    # Empty: the deployment's (see ``chat.catalog.reasoning_effort_for``).
    reasoning_effort = models.CharField(
        _("reasoning effort"), max_length=16, choices=REASONING_EFFORT_CHOICES, blank=True
    )
    # The last stored response on Azure that continues this conversation, and where it lives.
    head_response_id = models.CharField(_("head response id"), max_length=200, blank=True)
    head_deployment = models.ForeignKey(
        Deployment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("head deployment"),
    )
    head_created_at = models.DateTimeField(_("head created at"), null=True, blank=True)
    # The branch shown: the newest message under this one (see chat.selectors). Each turn
    # moves it to its reply; an edit, a regenerated reply or the arrows between versions move
    # it to another branch.
    current_leaf = models.ForeignKey(
        "Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current leaf"),
    )
    archived = models.BooleanField(_("archived"), default=False)
    pinned = models.BooleanField(_("pinned"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, db_index=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-updated_at", "-id"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        indexes: ClassVar = [
            models.Index(fields=["owner", "-updated_at"]),
            # The sidebar: the owner's unarchived conversations, pinned first, newest first.
            models.Index(
                fields=["owner", "-pinned", "-updated_at"],
                condition=Q(archived=False),
                name="chat_conv_sidebar_idx",
            ),
        ]

    def __str__(self) -> str:
        # Not the title: it is made from the person's words, and this name shows in the admin.
        return gettext("Conversation %(id)s") % {"id": self.pk}

    @property
    def display_title(self) -> str:
        return self.title or gettext("New chat")

    def head_on_resource_of(self, deployment: Deployment) -> bool:
        """Whether the head lives on ``deployment``'s resource (another deployment of it, as
        after switching model): response ids are kept per resource. Only a head already loaded
        is compared, so async callers never query here."""
        head = self.head_deployment if Conversation.head_deployment.is_cached(self) else None
        return head is not None and head.is_stateful and head.base_url == deployment.base_url

    def head_usable_for(self, deployment: Deployment, *, now: datetime | None = None) -> bool:
        """Whether the next turn on ``deployment`` may continue from the stored head."""
        if not (deployment.is_stateful and self.head_response_id and self.head_created_at):
            return False
        if self.head_deployment_id != deployment.pk and not self.head_on_resource_of(deployment):
            return False
        now = now or timezone.now()
        return self.head_created_at + deployment.remote_retention > now


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        STREAMING = "streaming", _("Streaming")
        COMPLETED = "completed", _("Completed")
        INCOMPLETE = "incomplete", _("Incomplete")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Stopped")

    IN_FLIGHT: ClassVar = (Status.PENDING, Status.STREAMING)

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    text = models.TextField(_("text"), blank=True)
    html = models.TextField(
        _("HTML"), blank=True, help_text=_("Sanitized render of text, made at write time.")
    )
    # A reasoning model's summary of its thinking, and its sanitized render.
    reasoning_summary = models.TextField(_("reasoning summary"), blank=True)
    reasoning_html = models.TextField(_("reasoning HTML"), blank=True)
    # On a stateless deployment: the reply's reasoning items as Azure sealed them
    # (encrypted_content), sent back verbatim with the history Azure does not keep.
    reasoning_items = models.JSONField(_("reasoning items"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.COMPLETED
    )
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error = models.TextField(
        _("error"), blank=True, help_text=_("A human explanation of what went wrong.")
    )
    client_id = models.UUIDField(_("client id"), null=True, blank=True)
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("reply to"),
    )
    # The message this one follows: a user message follows a reply, a reply its question.
    # Siblings (the same parent) are branches. A row without a parent follows the message
    # before it in the conversation, unless it is a branch root: an edit of the first message.
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    branch_root = models.BooleanField(_("branch root"), default=False)
    deployment = models.ForeignKey(
        Deployment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("deployment"),
    )
    response_id = models.CharField(_("response id"), max_length=200, blank=True)
    request_id = models.CharField(_("request id"), max_length=100, blank=True)
    context_rebuilt = models.BooleanField(_("context rebuilt"), default=False)
    input_tokens = models.PositiveIntegerField(_("input tokens"), null=True, blank=True)
    output_tokens = models.PositiveIntegerField(_("output tokens"), null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(_("reasoning tokens"), null=True, blank=True)
    cached_tokens = models.PositiveIntegerField(_("cached tokens"), null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(_("first token (ms)"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # A reply in flight is renewed here by the process writing it; one whose lease ran out was
    # abandoned (its process died). In the database, so no cache failure can fake an orphan.
    alive_until = models.DateTimeField(_("alive until"), null=True, blank=True)
    # A reply in background mode, as its lease last saw it: Azure's response and the sequence
    # number of the last event whose text is in ``text``, to be resumed after by any process.
    resume_response_id = models.CharField(_("resume response id"), max_length=200, blank=True)
    resume_after = models.IntegerField(_("resume after"), null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"], name="one_turn_per_client_message_id"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["conversation", "status"]),
            # Usage reports and quotas sum a deployment's tokens by day.
            models.Index(fields=["deployment", "created_at"]),
        ]

    def __str__(self) -> str:
        return gettext("%(role)s message %(id)s") % {"role": self.get_role_display(), "id": self.pk}

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


class StoredResponse(models.Model):
    """The ledger: one row for every response Azure keeps (created with store=true)."""

    class State(models.TextChoices):
        LIVE = "live", _("Live")
        DELETING = "deleting", _("Deleting")
        DELETED = "deleted", _("Deleted")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Failed")

    response_id = models.CharField(_("response id"), max_length=200)
    deployment = models.ForeignKey(
        Deployment,
        on_delete=models.PROTECT,
        related_name="stored_responses",
        verbose_name=_("deployment"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stored_responses",
    )
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("conversation"),
    )
    message = models.ForeignKey(
        Message,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    remote_expires_at = models.DateTimeField(_("remote expires at"), db_index=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.LIVE)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # A worker holds a row while it deletes it; a killed worker's lease simply runs out.
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("deleted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    request_id = models.CharField(_("Azure request id"), max_length=100, blank=True)
    region = models.CharField(_("region"), max_length=32, blank=True)
    # The resource the copy lives on, as it was when Azure named it: deletion goes there even
    # after an admin re-points the deployment.
    endpoint = models.URLField(_("endpoint"), blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        verbose_name = _("stored response")
        verbose_name_plural = _("stored responses")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["deployment", "response_id"], name="one_ledger_row_per_response"
            )
        ]
        indexes: ClassVar = [models.Index(fields=["state", "remote_expires_at"])]

    def __str__(self) -> str:
        return self.response_id


class TokenUsage(Message):
    """Token usage, read from the messages; its admin page is the usage report."""

    class Meta:
        proxy = True
        verbose_name = _("token usage")
        verbose_name_plural = _("token usage")


class WorkerHeartbeat(models.Model):
    """A task worker (``manage.py db_worker``) saying it is alive, one row per worker run.

    In the database, not the cache: the worker and the admin are different processes, and the
    database is the one thing both always share.
    """

    worker_id = models.CharField(_("worker id"), max_length=64, unique=True)
    hostname = models.CharField(_("host name"), max_length=255)
    pid = models.PositiveIntegerField(_("PID"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    seen_at = models.DateTimeField(_("seen at"), default=timezone.now, db_index=True)

    class Meta:
        ordering: ClassVar = ["-seen_at"]
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"


# Kept in their own module (this one is long enough); imported here so Django finds them.
from chat.attachment_models import Attachment as Attachment  # noqa: E402
from chat.personal_models import (  # noqa: E402
    Feedback as Feedback,
    Preset as Preset,
)
