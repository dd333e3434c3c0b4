from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User

admin.site.register(User, UserAdmin)
admin.site.site_header = "Chat administration"
admin.site.site_title = "Chat admin"


class SignInAttemptAdmin(AccessAttemptAdmin):  # type: ignore[misc]  # axes ships no types
    """Axes' failed sign-ins, with a plain way for staff to let a locked-out person back in."""

    actions = ["unlock", "cleanup_expired_attempts"]

    @admin.action(description="Unlock: forget the selected failed sign-ins")
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        count, _ = queryset.delete()
        self.message_user(
            request, f"Unlocked: {count} failed sign-in record(s) forgotten.", messages.SUCCESS
        )


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, SignInAttemptAdmin)
