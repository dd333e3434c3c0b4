"""What the admin pages share: the acting user, clock times, the queued-deletions message."""

from datetime import UTC, datetime

from django.http import HttpRequest
from django.utils.translation import gettext

from accounts.models import User


def clock_time(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%H:%M:%S UTC")


def acting_user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def queued_message(queued: int, selected: int | None = None) -> str:
    text = gettext("%(count)s deletion(s) from Azure queued.") % {"count": queued}
    if selected is not None and selected > queued:
        text += " " + gettext(
            "%(count)s selected copy(ies) were already deleted, expired or queued."
        ) % {"count": selected - queued}
    return text
