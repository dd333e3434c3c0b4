"""Open websockets follow their session: when it ends, they close, in every process.

Each socket joins a group for its user and one for its session on the channel layer. Ending a
session (sign-out) closes that session's sockets; a password change or a deactivation closes
every socket of the user. The socket itself also re-checks its session before each turn (see
``session_is_current``), so a process that missed the event still refuses.
"""

from __future__ import annotations

import hashlib
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db.models import Subquery
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User

logger = logging.getLogger(__name__)

# The event every socket of an ended session receives; consumers implement ``session_ended``.
SESSION_ENDED = "session.ended"


def user_group(user_id: int) -> str:
    return f"accounts.user.{user_id}"


def session_group(session_key: str) -> str:
    # A digest, so that the session key itself never travels to Redis as a group name.
    return "accounts.session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _broadcast(group: str, reason: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": SESSION_ENDED, "reason": reason})
    except Exception:
        # Sockets still re-check their session before every turn; this only makes it prompt.
        logger.warning("could not tell open sockets that a session ended (%s)", reason)


def sockets_close_for_session(*, session_key: str, reason: str) -> None:
    _broadcast(session_group(session_key), reason)


def sockets_close_for_user(*, user_id: int, reason: str) -> None:
    _broadcast(user_group(user_id), reason)


def session_is_current(*, user_id: int, session_key: str | None) -> bool:
    """Whether ``session_key`` is still a live session of this active user, signed with the
    user's current password: one query, for the check each websocket turn makes."""
    if not session_key:
        return False
    row = (
        User.objects.filter(pk=user_id, is_active=True)
        .annotate(
            session_data=Subquery(
                Session.objects.filter(
                    session_key=session_key, expire_date__gt=timezone.now()
                ).values("session_data")[:1]
            )
        )
        .values_list("password", "session_data")
        .first()
    )
    if row is None:
        return False
    return session_signed_by(user_id=user_id, password=row[0], session_data=row[1])


def session_signed_by(*, user_id: int, password: str | None, session_data: str | None) -> bool:
    """Whether a session's stored data (None: no live session) signs in this user with this
    password hash (None: no active user): the check of ``session_is_current`` on a row another
    query read."""
    if password is None or session_data is None:
        return False
    data = SessionStore().decode(session_data)
    if str(data.get(SESSION_KEY)) != str(user_id) or not data.get(BACKEND_SESSION_KEY):
        return False
    signed = str(data.get(HASH_SESSION_KEY, ""))
    user = User(pk=user_id, password=password)
    return any(
        constant_time_compare(signed, valid)
        for valid in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    )
