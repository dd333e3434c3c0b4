"""The deployment form shared by the admin and ``manage.py deployments``.

Both validate through the model (``full_clean``: refused models, endpoint rules, retention) and
both treat "default" as a move: marking a deployment default takes the mark from the previous
one in the same transaction instead of refusing a second default.
"""

from typing import Any

from django import forms
from django.db import transaction

from chat.models import Deployment


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
            "default_instructions",
            "failover_group",
            "priority",
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
    """Save ``deployment``; when it is the default, the previous default stops being one."""
    if deployment.is_default:
        Deployment.objects.filter(is_default=True).exclude(pk=deployment.pk).update(
            is_default=False
        )
    deployment.save(**save_kwargs)
    return deployment
