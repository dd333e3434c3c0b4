"""Deployments: add, edit, test, fail over and export them."""

import os
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _
from django.views.decorators.http import require_POST

from chat import failover, llm
from chat.admin.shared import acting_user, clock_time, queued_message
from chat.forms_admin import DeploymentForm, save_deployment
from chat.ledger import ON_AZURE, ledger_outstanding, ledger_queue_deletions
from chat.models import Deployment, StoredResponse


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    form = DeploymentForm
    list_display = (
        "name",
        "model",
        "region",
        "deployment_name",
        "store_policy",
        "remote_retention_hours",
        "credentials",
        "failover_member",
        "health",
        "enabled",
        "disabled_reason",
        "is_default",
    )
    list_filter = ("enabled", "model", "region", "store_policy", "auth_mode", "failover_group")
    search_fields = ("name", "deployment_name", "endpoint", "failover_group")
    filter_horizontal = ("allowed_groups",)
    readonly_fields = ("credentials", "disabled_reason", "created_at", "updated_at")
    actions = ("test_connection", "delete_remote_copies")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "disabled_reason", "is_default")}),
        (_("Azure resource"), {"fields": ("endpoint", "region", "deployment_name", "model")}),
        (
            _("Authentication"),
            {
                "fields": ("auth_mode", "api_key_env", "credentials", "managed_identity_client_id"),
                "description": _(
                    "The API key itself never enters the app's database or pages: "
                    "name the environment variable that holds it."
                ),
            },
        ),
        (
            _("Storage on Azure"),
            {"fields": ("store_policy", "remote_retention_hours", "background_mode")},
        ),
        (
            _("Conversations"),
            {"fields": ("default_instructions", "reasoning_effort", "daily_token_quota")},
        ),
        (
            _("Who may use it"),
            {
                "fields": ("allowed_groups",),
                "description": _(
                    "Limit it to groups: Entra ID app roles arrive as groups of "
                    "the same name at each sign-in. With none, everyone may use it."
                ),
            },
        ),
        (
            _("Failover"),
            {
                "fields": ("failover_group", "priority"),
                "description": _(
                    "When a deployment answers 429 or 5xx before the first token, "
                    "the turn moves to the next healthy deployment of its group serving the "
                    "same model, lowest priority number first."
                ),
            },
        ),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("credentials"))
    def credentials(self, deployment: Deployment) -> str:
        if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
            return "Entra ID"
        # Only whether the variable is set is shown, never its value.
        if os.environ.get(deployment.api_key_env):
            return gettext("%(variable)s (set)") % {"variable": deployment.api_key_env}
        return gettext("%(variable)s (NOT SET)") % {"variable": deployment.api_key_env}

    @admin.display(description=_("failover"), ordering="failover_group")
    def failover_member(self, deployment: Deployment) -> str:
        if not deployment.failover_group:
            return "-"
        return gettext("%(group)s (priority %(priority)s)") % {
            "group": deployment.failover_group,
            "priority": deployment.priority,
        }

    @admin.display(description=_("recent health"))
    def health(self, deployment: Deployment) -> str:
        state = failover.health(deployment)
        reason = state["last_failure_reason"] or gettext("error")
        if state["cooling_down_until"]:
            return gettext("Skipped until %(time)s (%(reason)s)") % {
                "time": clock_time(state["cooling_down_until"]),
                "reason": reason,
            }
        if state["recent_failures"]:
            return gettext("%(count)s recent failure(s), last %(reason)s") % {
                "count": state["recent_failures"],
                "reason": reason,
            }
        if state["last_success_at"]:
            return gettext("OK (last answer %(time)s)") % {
                "time": clock_time(state["last_success_at"])
            }
        return "-"

    def save_model(
        self, request: HttpRequest, obj: Deployment, form: ModelForm[Deployment], change: bool
    ) -> None:
        save_deployment(obj)

    # --- Test connection: an action on the list, and a button on the change page ----------

    def _report_connection(self, request: HttpRequest, deployment: Deployment) -> None:
        report = async_to_sync(llm.test_connection)(deployment)
        if report.error is None:
            self.message_user(
                request,
                gettext(
                    "%(deployment)s: answered in %(latency)s ms "
                    "(region %(region)s, model %(model)s)."
                )
                % {
                    "deployment": deployment,
                    "latency": report.latency_ms,
                    "region": report.region or gettext("unknown"),
                    "model": report.model or gettext("unknown"),
                },
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"{deployment}: {report.error.message} [{report.error.kind}: "
                f"{report.error.detail}]",
                messages.ERROR,
            )

    @admin.action(
        description=_("Test the connection of the selected deployments"), permissions=["change"]
    )
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for deployment in queryset:
            self._report_connection(request, deployment)

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        deployment = self.get_object(request, unquote(object_id))
        if deployment is None:
            raise Http404(gettext("No such deployment."))
        if not self.has_change_permission(request, deployment):
            raise PermissionDenied
        self._report_connection(request, deployment)
        return redirect("admin:chat_deployment_change", deployment.pk)

    def get_urls(self) -> list[URLPattern]:
        test_connection = self.admin_site.admin_view(require_POST(self.test_connection_view))
        return [
            path(
                "<path:object_id>/test-connection/",
                test_connection,
                name="chat_deployment_test_connection",
            ),
            *super().get_urls(),
        ]

    # --- Remote copies, and deleting a deployment only once Azure holds none of them ------

    @admin.action(
        description=_("Delete every remote copy made on the selected deployments"),
        permissions=["change"],
    )
    def delete_remote_copies(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        queued = ledger_queue_deletions(
            rows=StoredResponse.objects.filter(deployment__in=queryset),
            requested_by=acting_user(request),
        )
        self.message_user(request, queued_message(queued), messages.SUCCESS)

    def get_deleted_objects(
        self, objs: Iterable[Deployment], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deployments = list(objs)
        outstanding = ledger_outstanding(deployments=deployments)
        if outstanding:
            protected = [
                format_html(
                    gettext(
                        "{deployment}: Azure may still hold {count} stored response(s) from it. "
                        "Delete them with the action “{action}” first."
                    ),
                    deployment=deployment,
                    count=outstanding[deployment.pk],
                    action=gettext("Delete every remote copy made on the selected deployments"),
                )
                for deployment in deployments
                if deployment.pk in outstanding
            ]
            return [], {}, set(), protected
        # What is left in the ledger is already gone from Azure: it goes with its deployment
        # (the ledger's PROTECT would refuse otherwise). Conversations and messages only lose
        # their link to it.
        finished = StoredResponse.objects.filter(deployment__in=deployments).count()
        summary = {str(Deployment._meta.verbose_name_plural): len(deployments)}
        if finished:
            summary[gettext("ledger rows of deleted or expired copies")] = finished
        return [str(deployment) for deployment in deployments], summary, set(), []

    def delete_model(self, request: HttpRequest, obj: Deployment) -> None:
        with transaction.atomic():
            StoredResponse.objects.filter(deployment=obj).exclude(state__in=ON_AZURE).delete()
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        with transaction.atomic():
            StoredResponse.objects.filter(deployment__in=queryset).exclude(
                state__in=ON_AZURE
            ).delete()
            queryset.delete()
