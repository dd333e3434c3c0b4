import os

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from chat import llm
from chat.forms_admin import DeploymentForm, save_deployment
from chat.models import Conversation, Deployment, Message


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    form = DeploymentForm
    list_display = (
        "name",
        "model",
        "region",
        "deployment_name",
        "store_policy",
        "credentials",
        "enabled",
        "is_default",
    )
    list_filter = ("enabled", "model", "region", "store_policy", "auth_mode")
    search_fields = ("name", "deployment_name", "endpoint", "failover_group")
    readonly_fields = ("created_at", "updated_at")
    actions = ("test_connection",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "is_default")}),
        ("Azure resource", {"fields": ("endpoint", "region", "deployment_name", "model")}),
        (
            "Authentication",
            {
                "fields": ("auth_mode", "api_key_env", "managed_identity_client_id"),
                "description": "The API key itself never enters the app's database or pages: "
                "name the environment variable that holds it.",
            },
        ),
        (
            "Storage on Azure",
            {"fields": ("store_policy", "remote_retention_hours")},
        ),
        ("Conversations", {"fields": ("default_instructions",)}),
        ("Failover", {"fields": ("failover_group", "priority")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="credentials")
    def credentials(self, deployment: Deployment) -> str:
        if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
            return "Entra ID"
        # Only whether the variable is set is shown, never its value.
        state = "set" if os.environ.get(deployment.api_key_env) else "NOT SET"
        return f"{deployment.api_key_env} ({state})"

    def save_model(
        self, request: HttpRequest, obj: Deployment, form: ModelForm[Deployment], change: bool
    ) -> None:
        save_deployment(obj)

    @admin.action(description="Test the connection of the selected deployments")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for deployment in queryset:
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


class ReadOnlyAdmin[T: Model](admin.ModelAdmin[T]):
    """People's conversations may be looked at (and deleted) by administrators, not edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: T | None = None) -> bool:
        return False


class MessageInline(admin.TabularInline[Message, Conversation]):
    model = Message
    fields = ("role", "status", "text", "error", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin[Conversation]):
    list_display = ("__str__", "owner", "deployment", "updated_at", "archived")
    list_filter = ("archived", "deployment")
    search_fields = ("title", "owner__username")
    list_select_related = ("owner", "deployment")
    inlines = (MessageInline,)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin[Message]):
    list_display = ("__str__", "conversation", "role", "status", "error_code", "created_at")
    list_filter = ("role", "status", "error_code")
    list_select_related = ("conversation",)
    exclude = ("html",)
