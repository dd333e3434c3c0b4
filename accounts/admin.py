from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy as _

from accounts.models import User


@admin.register(User)
class ChatUserAdmin(UserAdmin[User]):
    """Where each account comes from: Microsoft Entra ID (its tenant, object id and roles, all
    set by sign-in and not editable here) or a local password."""

    list_display = (
        "username",
        "full_name",
        "email",
        "source",
        "is_staff",
        "is_active",
        "last_login",
    )
    list_filter = (*UserAdmin.list_filter, "last_entra_sign_in")
    search_fields = (*UserAdmin.search_fields, "entra_object_id")
    readonly_fields = ("entra_tenant_id", "entra_object_id", "entra_roles", "last_entra_sign_in")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        (
            _("Microsoft Entra ID"),
            {
                "fields": readonly_fields,
                "description": _(
                    "Set at each sign-in from the ID token; roles are managed in "
                    "Entra ID (app roles), not here."
                ),
            },
        ),
    )

    @admin.display(description=_("name"))
    def full_name(self, user: User) -> str:
        return user.get_full_name()

    @admin.display(description=_("signs in with"))
    def source(self, user: User) -> str:
        return (
            gettext("Microsoft Entra ID") if user.signs_in_with_entra else gettext("local password")
        )


admin.site.site_header = _("Chat administration")
admin.site.site_title = _("Chat admin")


class SignInAttemptAdmin(AccessAttemptAdmin):  # type: ignore[misc]  # axes ships no types
    """Axes' failed sign-ins, with a plain way for staff to let a locked-out person back in."""

    actions = ["unlock", "cleanup_expired_attempts"]

    @admin.action(description=_("Unlock: forget the selected failed sign-ins"))
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        count, _ = queryset.delete()
        self.message_user(
            request,
            gettext("Unlocked: %(count)s failed sign-in record(s) forgotten.") % {"count": count},
            messages.SUCCESS,
        )


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, SignInAttemptAdmin)
