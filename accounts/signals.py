"""Ending a session ends what it opened: sessions, sockets, and (through ``access_revoked``)
the replies being written for the user.

A deactivated user's sessions end at once, not when they next expire; a changed password
invalidates the other sessions (Django's session hash) and closes every socket of the user.
"""

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.services import user_end_sessions
from accounts.sockets import sockets_close_for_session, sockets_close_for_user

BEFORE_SAVE = "_state_before_save"

# Sent with ``user`` and ``reason`` when a user may no longer chat with the sessions they had:
# the chat app stops their replies in flight.
access_revoked = Signal()


@receiver(pre_save, sender=User)
def remember_previous_state(sender: type[User], instance: User, **kwargs: Any) -> None:
    before = None
    if instance.pk is not None:
        before = User.objects.filter(pk=instance.pk).values_list("is_active", "password").first()
    setattr(instance, BEFORE_SAVE, before)


@receiver(post_save, sender=User)
def revoke_access_of_deactivated_or_repassworded_user(
    sender: type[User], instance: User, created: bool, **kwargs: Any
) -> None:
    before: tuple[bool, str] | None = getattr(instance, BEFORE_SAVE, None)
    if created or before is None:
        return
    was_active, old_password = before
    if was_active and not instance.is_active:
        reason = "deactivated"
        user_end_sessions(user=instance)
    elif old_password != instance.password:
        reason = "password_changed"
    else:
        return
    sockets_close_for_user(user_id=instance.pk, reason=reason)
    access_revoked.send(sender=User, user=instance, reason=reason)


@receiver(user_logged_out)
def close_sockets_of_signed_out_session(
    sender: Any, request: HttpRequest, user: User | None, **kwargs: Any
) -> None:
    if request.session.session_key:
        sockets_close_for_session(session_key=request.session.session_key, reason="signed_out")
