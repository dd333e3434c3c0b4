from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy as _

from chat.catalog import (
    MODEL_CHOICES,
    REASONING_EFFORT_CHOICES,
    REFUSED_MODELS,
    REGION_CHOICES,
    is_reasoning_model,
    reasoning_efforts,
)
from chat.durations import hours_or_days_text
from chat.validators import validate_api_key_env, validate_endpoint

if TYPE_CHECKING:
    from accounts.models import User

MAX_REMOTE_RETENTION_HOURS = 720  # Azure keeps stored responses for 30 days.


def resource_url(endpoint: str) -> str:
    """The Azure resource an endpoint names, as its API's base URL: two deployments on one
    resource share their stored responses (and can open each other's sealed reasoning)."""
    return endpoint.strip().rstrip("/") + "/openai/v1/"


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def usable_by(self, user: User) -> DeploymentQuerySet:
        """The enabled deployments ``user`` may chat with: those limited to no group, and
        those limited to a group of theirs (an Entra ID app role mirrored as a group, or a
        local group)."""
        return self.usable_by_user_id(user.pk)

    def usable_by_user_id(self, user_id: int) -> DeploymentQuerySet:
        open_to_user = Deployment.objects.filter(
            Q(allowed_groups=None) | Q(allowed_groups__user=user_id)
        ).values("pk")
        return self.filter(enabled=True, pk__in=open_to_user)


def deployment_open_to(user_id: int, *, deployment: str = "deployment_id") -> Exists | Q:
    """A condition on a row holding ``deployment`` (a field naming a deployment): that
    deployment is limited to no group, or to one of the user's. For a turn's own query, so
    the check costs no round trip of its own."""
    limits = Deployment.allowed_groups.through.objects.filter(deployment_id=OuterRef(deployment))
    return ~Exists(limits) | Exists(limits.filter(group__user=user_id))


class Deployment(models.Model):
    class AuthMode(models.TextChoices):
        API_KEY = "api_key", _("API key")
        ENTRA_ID = "entra_id", _("Microsoft Entra ID")

    class StorePolicy(models.TextChoices):
        STATEFUL = "stateful", _("Stateful: Azure keeps each response (previous_response_id)")
        STATELESS = "stateless", _("Stateless: nothing kept on Azure, full history each turn")

    name = models.CharField(_("display name"), max_length=100, unique=True)
    endpoint = models.CharField(
        _("endpoint"),
        max_length=300,
        validators=[validate_endpoint],
        help_text=_(
            "The resource's base URL, e.g. https://myresource.openai.azure.com "
            "(the app appends /openai/v1/)."
        ),
    )
    region = models.CharField(_("region"), max_length=32, choices=REGION_CHOICES)
    deployment_name = models.CharField(
        _("deployment name"),
        max_length=64,
        validators=[
            RegexValidator(
                r"\A[A-Za-z0-9._-]+\Z",
                _("A deployment name on Azure has letters, digits, dots, dashes and underscores."),
            )
        ],
        help_text=_("The deployment's name on the resource; sent as the request's model."),
    )
    model = models.CharField(_("model"), max_length=64, choices=MODEL_CHOICES)
    auth_mode = models.CharField(
        _("auth mode"), max_length=16, choices=AuthMode.choices, default=AuthMode.API_KEY
    )
    api_key_env = models.CharField(
        _("API key environment variable"),
        max_length=100,
        blank=True,
        default="AZURE_OPENAI_API_KEY",
        validators=[
            RegexValidator(
                r"^[A-Z_][A-Z0-9_]*$",
                _(
                    "Give the name of an environment variable (capitals, digits, underscores), "
                    "never the key itself."
                ),
            ),
            validate_api_key_env,
        ],
        help_text=_(
            "The name of the environment variable holding the key. The key itself is "
            "never stored or shown."
        ),
    )
    managed_identity_client_id = models.CharField(
        _("managed identity client id"),
        max_length=64,
        blank=True,
        help_text=_("For Entra ID with a user-assigned managed identity; leave empty otherwise."),
    )
    store_policy = models.CharField(
        _("store policy"), max_length=16, choices=StorePolicy.choices, default=StorePolicy.STATEFUL
    )
    remote_retention_hours = models.PositiveIntegerField(
        _("remote retention hours"),
        default=MAX_REMOTE_RETENTION_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REMOTE_RETENTION_HOURS)],
        help_text=_(
            "How long stored responses may stay on Azure before the retention sweep "
            "deletes them (at most 720 hours, Azure's own 30 days)."
        ),
    )
    background_mode = models.BooleanField(
        _("background mode"),
        default=False,
        help_text=_(
            "Run replies in background mode (background=true with streaming): a reply "
            "whose stream drops or whose server process stops is resumed from Azure's copy, and "
            "Stop cancels it on Azure. Stored responses only. Azure's guide warns that background "
            "mode with streaming has known performance issues (a slower first token)."
        ),
    )
    default_instructions = models.TextField(
        _("default instructions"),
        blank=True,
        help_text=_("Instructions (system prompt) offered for new conversations."),
    )
    reasoning_effort = models.CharField(
        _("reasoning effort"),
        max_length=16,
        choices=REASONING_EFFORT_CHOICES,
        blank=True,
        help_text=_(
            "For reasoning models: how hard the model thinks unless a conversation picks "
            "otherwise; empty for the model's own default. Only the gpt-5 family takes minimal."
        ),
    )
    failover_group = models.CharField(
        _("failover group"),
        max_length=64,
        blank=True,
        help_text=_("Deployments of the same model in one group stand in for each other."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=100, help_text=_("Lower goes first within a failover group.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    disabled_reason = models.CharField(
        _("why it is off"),
        max_length=300,
        blank=True,
        editable=False,
        help_text=_("Set when the app itself switched the deployment off; cleared when enabled."),
    )
    is_default = models.BooleanField(_("default"), default=False)
    allowed_groups = models.ManyToManyField(
        "auth.Group",
        blank=True,
        related_name="deployments",
        verbose_name=_("limited to groups"),
        help_text=_(
            "Only members of these groups may use it (an Entra ID app role arrives as "
            "a group of the same name); none: everyone may."
        ),
    )
    daily_token_quota = models.PositiveIntegerField(
        _("daily token quota"),
        null=True,
        blank=True,
        help_text=_(
            "Tokens (input + output) each person may use per day (UTC) on this "
            "deployment; empty for no limit."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["priority", "name"]
        verbose_name = _("deployment")
        verbose_name_plural = _("deployments")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_deployment"
            ),
            models.CheckConstraint(
                condition=Q(remote_retention_hours__lte=MAX_REMOTE_RETENTION_HOURS),
                name="remote_retention_at_most_30_days",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def usable_by(self, user: User) -> bool:
        return Deployment.objects.usable_by(user).filter(pk=self.pk).exists()

    def clean(self) -> None:
        if self.model in REFUSED_MODELS:
            raise ValidationError({"model": REFUSED_MODELS[self.model]})
        if self.auth_mode == self.AuthMode.API_KEY and not self.api_key_env:
            raise ValidationError(
                {"api_key_env": gettext("Name the environment variable that holds the API key.")}
            )
        if self.reasoning_effort and self.reasoning_effort not in reasoning_efforts(self.model):
            raise ValidationError(
                {
                    "reasoning_effort": f"{self.model} does not take a {self.reasoning_effort} "
                    "reasoning effort; leave it empty."
                    if self.reasons
                    else f"{self.model} is not a reasoning model: leave the effort empty."
                }
            )

    @property
    def base_url(self) -> str:
        return resource_url(self.endpoint)

    @property
    def is_stateful(self) -> bool:
        return self.store_policy == self.StorePolicy.STATEFUL

    @property
    def runs_in_background(self) -> bool:
        """Background mode needs the response stored on Azure, to be resumed from there."""
        return self.background_mode and self.is_stateful

    @property
    def reasons(self) -> bool:
        return is_reasoning_model(self.model)

    @property
    def reasoning_effort_choices(self) -> list[tuple[str, Promise]]:
        efforts = reasoning_efforts(self.model)
        return [(value, label) for value, label in REASONING_EFFORT_CHOICES if value in efforts]

    @property
    def remote_retention(self) -> timedelta:
        return timedelta(hours=self.remote_retention_hours)

    @property
    def retention_label(self) -> str:
        if not self.is_stateful:
            return gettext("Nothing kept on Azure")
        return gettext("Azure keeps a copy for %(span)s") % {
            "span": hours_or_days_text(self.remote_retention_hours)
        }


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
