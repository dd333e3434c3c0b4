from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import User


def user_end_sessions(*, user: User) -> int:
    """Delete every live session that belongs to ``user``; returns how many ended.

    Sessions are signed blobs keyed by session key, so finding a user's sessions means decoding
    the live ones. That is fine at intranet scale and only runs when a user is deactivated.
    """
    user_pk = str(user.pk)
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == user_pk:
            session.delete()
            ended += 1
    return ended
