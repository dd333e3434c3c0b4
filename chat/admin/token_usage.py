"""Token usage per deployment and person, with its chart."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from chat.forms_admin import UsageFilterForm
from chat.models import TokenUsage
from chat.usage import usage_chart, usage_report


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
            "title": gettext("Token usage"),
            "opts": self.opts,
            "form": form,
            "report": report,
            "chart": chart,
        }
        return TemplateResponse(request, "admin/chat/tokenusage/usage.html", context)
