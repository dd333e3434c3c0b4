"""Forms of the admin, and the deployment form shared with ``manage.py deployments``.

Both validate deployments through the model (``full_clean``: refused models, endpoint rules,
retention) and both treat "default" as a move: marking a deployment default takes the mark from
the previous one in the same transaction instead of refusing a second default.
"""

from datetime import UTC, date, timedelta
from typing import Any

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from chat.ledger import ledger_retention_changed
from chat.models import Deployment

# The usage report's range when none is asked for, and the longest it may span.
USAGE_DEFAULT_DAYS = 30
USAGE_MAX_DAYS = 366


class DeploymentForm(forms.ModelForm[Deployment]):
    class Meta:
        model = Deployment
        fields = (
            "name",
            "endpoint",
            "region",
            "deployment_name",
            "model",
            "auth_mode",
            "api_key_env",
            "managed_identity_client_id",
            "store_policy",
            "remote_retention_hours",
            "background_mode",
            "default_instructions",
            "reasoning_effort",
            "failover_group",
            "priority",
            "daily_token_quota",
            "allowed_groups",
            "enabled",
            "is_default",
        )

    def validate_constraints(self) -> None:
        # The one-default constraint is met by save_deployment, which moves the mark, so it is
        # checked here as if this deployment were not (yet) the default.
        is_default = self.instance.is_default
        self.instance.is_default = False
        try:
            super().validate_constraints()
        finally:
            self.instance.is_default = is_default


@transaction.atomic
def save_deployment(deployment: Deployment, **save_kwargs: Any) -> Deployment:
    """Save ``deployment``; when it is the default, the previous default stops being one.

    Enabling a deployment clears the reason the app gave for switching it off.

    A changed remote retention moves the expiry shown for its live stored responses too (the
    retention sweep always applies the deployment's current retention).
    """
    if deployment.enabled:
        deployment.disabled_reason = ""
    if deployment.is_default:
        Deployment.objects.filter(is_default=True).exclude(pk=deployment.pk).update(
            is_default=False
        )
    previous_retention = deployment.pk and (
        Deployment.objects.filter(pk=deployment.pk)
        .values_list("remote_retention_hours", flat=True)
        .first()
    )
    deployment.save(**save_kwargs)
    if previous_retention and previous_retention != deployment.remote_retention_hours:
        ledger_retention_changed(deployment=deployment)
    return deployment


def _today() -> date:
    return timezone.now().astimezone(UTC).date()


class UsageFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        end = cleaned.get("end") or _today()
        start = cleaned.get("start") or end - timedelta(days=USAGE_DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(gettext("The start comes after the end."))
        if (end - start).days >= USAGE_MAX_DAYS:
            raise forms.ValidationError(
                gettext("Ask for at most %(days)s days at a time.") % {"days": USAGE_MAX_DAYS}
            )
        cleaned["start"], cleaned["end"] = start, end
        return cleaned
