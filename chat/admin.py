import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from accounts.models import User
from chat import failover, llm
from chat.forms_admin import DeploymentForm, UsageFilterForm, save_deployment
from chat.ledger import ON_AZURE, ledger_outstanding, ledger_queue_deletions
from chat.models import Conversation, Deployment, Message, StoredResponse, TokenUsage
from chat.usage import usage_chart, usage_report
from chat.worker_heartbeat import worker_notice


def _clock(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%H:%M:%S UTC")


def _acting_user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _queued_message(queued: int, selected: int | None = None) -> str:
    text = f"{queued} deletion(s) from Azure queued."
    if selected is not None and selected > queued:
        text += f" {selected - queued} selected copy(ies) were already deleted, expired or queued."
    return text


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
    readonly_fields = ("credentials", "disabled_reason", "created_at", "updated_at")
    actions = ("test_connection", "delete_remote_copies")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "disabled_reason", "is_default")}),
        ("Azure resource", {"fields": ("endpoint", "region", "deployment_name", "model")}),
        (
            "Authentication",
            {
                "fields": ("auth_mode", "api_key_env", "credentials", "managed_identity_client_id"),
                "description": "The API key itself never enters the app's database or pages: "
                "name the environment variable that holds it.",
            },
        ),
        (
            "Storage on Azure",
            {"fields": ("store_policy", "remote_retention_hours")},
        ),
        ("Conversations", {"fields": ("default_instructions", "daily_token_quota")}),
        (
            "Failover",
            {
                "fields": ("failover_group", "priority"),
                "description": "When a deployment answers 429 or 5xx before the first token, "
                "the turn moves to the next healthy deployment of its group serving the same "
                "model, lowest priority number first.",
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="credentials")
    def credentials(self, deployment: Deployment) -> str:
        if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
            return "Entra ID"
        # Only whether the variable is set is shown, never its value.
        state = "set" if os.environ.get(deployment.api_key_env) else "NOT SET"
        return f"{deployment.api_key_env} ({state})"

    @admin.display(description="failover", ordering="failover_group")
    def failover_member(self, deployment: Deployment) -> str:
        if not deployment.failover_group:
            return "-"
        return f"{deployment.failover_group} (priority {deployment.priority})"

    @admin.display(description="recent health")
    def health(self, deployment: Deployment) -> str:
        state = failover.health(deployment)
        reason = state["last_failure_reason"] or "error"
        if state["cooling_down_until"]:
            return f"Skipped until {_clock(state['cooling_down_until'])} ({reason})"
        if state["recent_failures"]:
            return f"{state['recent_failures']} recent failure(s), last {reason}"
        if state["last_success_at"]:
            return f"OK (last answer {_clock(state['last_success_at'])})"
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
                f"{deployment}: answered in {report.latency_ms} ms "
                f"(region {report.region or 'unknown'}, model {report.model or 'unknown'}).",
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
        description="Test the connection of the selected deployments", permissions=["change"]
    )
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for deployment in queryset:
            self._report_connection(request, deployment)

    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        deployment = self.get_object(request, unquote(object_id))
        if deployment is None:
            raise Http404("No such deployment.")
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
        description="Delete every remote copy made on the selected deployments",
        permissions=["change"],
    )
    def delete_remote_copies(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        queued = ledger_queue_deletions(
            rows=StoredResponse.objects.filter(deployment__in=queryset),
            requested_by=_acting_user(request),
        )
        self.message_user(request, _queued_message(queued), messages.SUCCESS)

    def get_deleted_objects(
        self, objs: Iterable[Deployment], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deployments = list(objs)
        outstanding = ledger_outstanding(deployments=deployments)
        if outstanding:
            protected = [
                format_html(
                    "{}: Azure may still hold {} stored response(s) from it. Delete them with "
                    "the action “Delete every remote copy made on the selected deployments” "
                    "first.",
                    deployment,
                    outstanding[deployment.pk],
                )
                for deployment in deployments
                if deployment.pk in outstanding
            ]
            return [], {}, set(), protected
        # What is left in the ledger is already gone from Azure: it goes with its deployment
        # (the ledger's PROTECT would refuse otherwise). Conversations and messages only lose
        # their link to it.
        finished = StoredResponse.objects.filter(deployment__in=deployments).count()
        summary = {"deployments": len(deployments)}
        if finished:
            summary["ledger rows of deleted or expired copies"] = finished
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


class ExpiringFilter(admin.SimpleListFilter):
    title = "expires on Azure"
    parameter_name = "expiring"
    _SPANS = {"day": timedelta(days=1), "week": timedelta(days=7)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("day", "within a day"), ("week", "within a week")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StoredResponse]
    ) -> QuerySet[StoredResponse]:
        span = self._SPANS.get(self.value() or "")
        if span is None:
            return queryset
        now = timezone.now()
        return queryset.filter(
            state__in=ON_AZURE, remote_expires_at__gt=now, remote_expires_at__lte=now + span
        )


@admin.register(StoredResponse)
class StoredResponseAdmin(admin.ModelAdmin[StoredResponse]):
    """The ledger: looked at and acted on, never edited or deleted locally."""

    list_display = (
        "response_id",
        "state",
        "deployment",
        "user",
        "conversation_link",
        "message_link",
        "created_at",
        "remote_expires_at",
        "attempts",
        "last_error",
    )
    list_filter = (
        "state",
        "deployment",
        ("user", admin.RelatedOnlyFieldListFilter),
        ExpiringFilter,
    )
    search_fields = ("response_id", "user__username")
    list_select_related = ("deployment", "user", "conversation")
    actions = (
        "delete_remotely",
        "delete_everything_of_users",
        "delete_everything_on_deployments",
        "requeue_failed",
    )
    fields = (
        "response_id",
        "state",
        "last_error",
        "deployment",
        "region",
        "request_id",
        "user",
        "conversation_link",
        "message_link",
        "created_at",
        "remote_expires_at",
        "attempts",
        "next_attempt_at",
        "lease_expires_at",
        "deleted_at",
        "deleted_by",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: StoredResponse | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: StoredResponse | None = None
    ) -> bool:
        return False

    def has_delete_remote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("chat.change_storedresponse")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "worker_notice": worker_notice()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="last error")
    def error(self, row: StoredResponse) -> str:
        return Truncator(row.last_error).chars(80)

    @admin.display(description="conversation")
    def conversation_link(self, row: StoredResponse) -> SafeString | str:
        if row.conversation is None:
            return "(deleted)"
        url = reverse("admin:chat_conversation_change", args=[row.conversation_id])
        return format_html('<a href="{}">{}</a>', url, row.conversation)

    @admin.display(description="message")
    def message_link(self, row: StoredResponse) -> SafeString | str:
        if row.message_id is None:
            return "(deleted)"
        url = reverse("admin:chat_message_change", args=[row.message_id])
        return format_html('<a href="{}">message {}</a>', url, row.message_id)

    def _queue(
        self,
        request: HttpRequest,
        rows: QuerySet[StoredResponse],
        whose: str = "",
        selected: int | None = None,
    ) -> None:
        queued = ledger_queue_deletions(rows=rows, requested_by=_acting_user(request))
        self.message_user(request, whose + _queued_message(queued, selected), messages.SUCCESS)

    @admin.action(
        description="Delete the selected copies from Azure", permissions=["delete_remote"]
    )
    def delete_remotely(self, request: HttpRequest, queryset: QuerySet[StoredResponse]) -> None:
        self._queue(request, queryset, selected=queryset.count())

    @admin.action(
        description="Delete every copy of the selected rows' users", permissions=["delete_remote"]
    )
    def delete_everything_of_users(
        self, request: HttpRequest, queryset: QuerySet[StoredResponse]
    ) -> None:
        users = list(User.objects.filter(pk__in=queryset.values("user")).order_by("username"))
        whose = f"Every copy of {', '.join(map(str, users))}: "
        self._queue(request, StoredResponse.objects.filter(user__in=users), whose)

    @admin.action(
        description="Delete every copy on the selected rows' deployments",
        permissions=["delete_remote"],
    )
    def delete_everything_on_deployments(
        self, request: HttpRequest, queryset: QuerySet[StoredResponse]
    ) -> None:
        deployments = list(Deployment.objects.filter(pk__in=queryset.values("deployment")))
        whose = f"Every copy on {', '.join(map(str, deployments))}: "
        self._queue(request, StoredResponse.objects.filter(deployment__in=deployments), whose)

    @admin.action(
        description="Queue the selected failed deletions again", permissions=["delete_remote"]
    )
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[StoredResponse]) -> None:
        failed = queryset.filter(state=StoredResponse.State.FAILED)
        self._queue(request, failed, "Failed copies: ")


class ReadOnlyAdmin[T: Model](admin.ModelAdmin[T]):
    """People's conversations as administrators see them: who, when, which model, how it went,
    what it cost, and what Azure keeps; never what anyone wrote or was told (titles and
    instructions included). They may be deleted here, not edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: T | None = None) -> bool:
        return False


MESSAGE_FIELDS = (
    "role",
    "status",
    "error_code",
    "deployment",
    "response_id",
    "context_rebuilt",
    "input_tokens",
    "output_tokens",
    "created_at",
)


class MessageInline(admin.TabularInline[Message, Conversation]):
    model = Message
    fields = MESSAGE_FIELDS
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin[Conversation]):
    list_display = ("__str__", "owner", "deployment", "chain", "updated_at", "archived")
    list_filter = ("archived", "deployment")
    search_fields = ("owner__username", "head_response_id")
    list_select_related = ("owner", "deployment")
    fields = ("owner", "deployment", "chain", "created_at", "updated_at", "archived")
    readonly_fields = fields
    inlines = (MessageInline,)

    @admin.display(description="history on Azure")
    def chain(self, conversation: Conversation) -> str:
        if not conversation.head_response_id:
            return "local only"
        return f"continues {conversation.head_response_id}"


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin[Message]):
    list_display = ("__str__", "conversation", "role", "status", "error_code", "created_at")
    list_filter = ("role", "status", "error_code")
    list_select_related = ("conversation",)
    search_fields = ("response_id", "request_id")
    fields = (
        "conversation",
        *MESSAGE_FIELDS,
        "error",
        "request_id",
        "reasoning_tokens",
        "cached_tokens",
        "first_token_ms",
        "duration_ms",
        "completed_at",
    )
    readonly_fields = fields


@admin.register(TokenUsage)
class TokenUsageAdmin(admin.ModelAdmin[TokenUsage]):
    """The usage report (tokens per day, user and deployment) in place of a list of rows."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TokenUsage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TokenUsage | None = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = UsageFilterForm(request.GET)
        report = chart = None
        if form.is_valid():
            report = usage_report(start=form.cleaned_data["start"], end=form.cleaned_data["end"])
            chart = usage_chart(report.days)
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": "Token usage",
            "opts": self.opts,
            "form": form,
            "report": report,
            "chart": chart,
        }
        return TemplateResponse(request, "admin/chat/tokenusage/usage.html", context)
