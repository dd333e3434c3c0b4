"""Deployments: an Azure resource's deployment of a model, and who may use it.

Imported by ``chat.models``, where Django looks for the app's models.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
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
