"""The ledger of copies Azure keeps, and their deletion."""

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext, gettext_lazy as _

from accounts.models import User
from chat.admin.shared import acting_user, queued_message
from chat.ledger import ON_AZURE, ledger_queue_deletions
from chat.models import Deployment, StoredResponse
from chat.worker_heartbeat import worker_notice


class ExpiringFilter(admin.SimpleListFilter):
    title = _("expires on Azure")
    parameter_name = "expiring"
    _SPANS = {"day": timedelta(days=1), "week": timedelta(days=7)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("day", gettext("within a day")), ("week", gettext("within a week"))]

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

    @admin.display(description=_("last error"))
    def error(self, row: StoredResponse) -> str:
        return Truncator(row.last_error).chars(80)

    @admin.display(description=_("conversation"))
    def conversation_link(self, row: StoredResponse) -> SafeString | str:
        if row.conversation is None:
            return gettext("(deleted)")
        url = reverse("admin:chat_conversation_change", args=[row.conversation_id])
        return format_html('<a href="{}">{}</a>', url, row.conversation)

    @admin.display(description=_("message"))
    def message_link(self, row: StoredResponse) -> SafeString | str:
        if row.message_id is None:
            return gettext("(deleted)")
        url = reverse("admin:chat_message_change", args=[row.message_id])
        return format_html(
            '<a href="{}">{}</a>', url, gettext("message %(id)s") % {"id": row.message_id}
        )

    def _queue(
        self,
        request: HttpRequest,
        rows: QuerySet[StoredResponse],
        whose: str = "",
        selected: int | None = None,
    ) -> None:
        queued = ledger_queue_deletions(rows=rows, requested_by=acting_user(request))
        self.message_user(request, whose + queued_message(queued, selected), messages.SUCCESS)

    @admin.action(
        description=_("Delete the selected copies from Azure"), permissions=["delete_remote"]
    )
    def delete_remotely(self, request: HttpRequest, queryset: QuerySet[StoredResponse]) -> None:
        self._queue(request, queryset, selected=queryset.count())

    @admin.action(
        description=_("Delete every copy of the selected rows' users"),
        permissions=["delete_remote"],
    )
    def delete_everything_of_users(
        self, request: HttpRequest, queryset: QuerySet[StoredResponse]
    ) -> None:
        users = list(User.objects.filter(pk__in=queryset.values("user")).order_by("username"))
        whose = gettext("Every copy of %(users)s: ") % {"users": ", ".join(map(str, users))}
        self._queue(request, StoredResponse.objects.filter(user__in=users), whose)

    @admin.action(
        description=_("Delete every copy on the selected rows' deployments"),
        permissions=["delete_remote"],
    )
    def delete_everything_on_deployments(
        self, request: HttpRequest, queryset: QuerySet[StoredResponse]
    ) -> None:
        deployments = list(Deployment.objects.filter(pk__in=queryset.values("deployment")))
        whose = gettext("Every copy on %(deployments)s: ") % {
            "deployments": ", ".join(map(str, deployments))
        }
        self._queue(request, StoredResponse.objects.filter(deployment__in=deployments), whose)

    @admin.action(
        description=_("Queue the selected failed deletions again"), permissions=["delete_remote"]
    )
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[StoredResponse]) -> None:
        failed = queryset.filter(state=StoredResponse.State.FAILED)
        self._queue(request, failed, gettext("Failed copies: "))
