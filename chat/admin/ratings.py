"""Feedback on replies as administrators see it: ratings and comments per deployment and model,
charted over time. A conversation's words show only where its owner shared it."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, gettext_lazy as _

from chat.feedback import feedback_report, shared_conversation
from chat.models import Feedback


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin[Feedback]):
    list_display = (
        "rating",
        "deployment",
        "model_family",
        "short_comment",
        "shared",
        "user",
        "updated_at",
    )
    list_filter = (
        "rating",
        "share_conversation",
        "message__deployment",
        "message__deployment__model",
    )
    list_select_related = ("message__deployment", "user")
    search_fields = ("comment",)
    date_hierarchy = "updated_at"
    fields = (
        "rating",
        "comment",
        "user",
        "deployment",
        "model_family",
        "shared",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Feedback | None = None) -> bool:
        return False

    @admin.display(description=_("deployment"), ordering="message__deployment__name")
    def deployment(self, feedback: Feedback) -> str:
        deployment = feedback.message.deployment
        return deployment.name if deployment else "-"

    @admin.display(description=_("model"), ordering="message__deployment__model")
    def model_family(self, feedback: Feedback) -> str:
        deployment = feedback.message.deployment
        return deployment.model if deployment else "-"

    @admin.display(description=_("comment"))
    def short_comment(self, feedback: Feedback) -> str:
        return Truncator(feedback.comment).chars(80) or "-"

    @admin.display(description=_("conversation"), ordering="share_conversation")
    def shared(self, feedback: Feedback) -> str:
        if not feedback.share_conversation:
            return gettext("not shared")
        url = reverse("admin:chat_feedback_conversation", args=[feedback.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Read the shared conversation"))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            changelist = response.context_data.get("cl")
            if changelist is not None:
                response.context_data["report"] = feedback_report(changelist.queryset)
        return response

    def conversation_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The conversation a rating was given in, read-only, when its owner shared it."""
        feedback = (
            Feedback.objects.select_related("message__conversation__deployment", "user")
            .filter(pk=unquote(object_id))
            .first()
        )
        if feedback is None:
            raise Http404(gettext("No such feedback."))
        if not self.has_view_permission(request, feedback):
            raise PermissionDenied
        conversation = shared_conversation(feedback)
        if conversation is None:
            raise Http404(gettext("This conversation was not shared."))
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Shared conversation"),
            "opts": self.opts,
            "feedback": feedback,
            "conversation": conversation,
            "chat_messages": conversation.messages.select_related("deployment").order_by("id"),
        }
        return TemplateResponse(request, "admin/chat/feedback/shared_conversation.html", context)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.conversation_view)
        return [
            path("<path:object_id>/conversation/", view, name="chat_feedback_conversation"),
            *super().get_urls(),
        ]
