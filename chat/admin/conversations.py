"""Conversations and messages as administrators see them: read-only, never the words."""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy as _

from chat.models import Conversation, Message


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

    @admin.display(description=_("history on Azure"))
    def chain(self, conversation: Conversation) -> str:
        if not conversation.head_response_id:
            return gettext("local only")
        return gettext("continues %(response)s") % {"response": conversation.head_response_id}


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
