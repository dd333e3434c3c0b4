"""The checks a turn passes before it is saved, in its own transaction: the conversation is the
person's and locked, the session still current, the model still theirs to use, no reply in
flight, and the rate limit and daily quota not reached. Each refusal is a ``TurnRefused`` with
the message the person is shown."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from accounts.sockets import session_is_current
from chat.durations import seconds_text
from chat.failover import failover_candidates
from chat.models import Conversation, Deployment, Message
from chat.rate_limits import rate_limit_hit
from chat.turn_lock import LockedConversation, conversation_lock
from chat.usage import quota_refusal


class SessionEnded(Exception):
    """The session that asked for the turn has ended, or its user may no longer chat."""


class TurnRefused(Exception):
    """A turn that cannot start; ``message`` is shown to the person as it is."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def refuse_not_allowed(
    *, user: User, conversation: Conversation, deployment: Deployment | None
) -> None:
    """A deployment limited to groups the user is no longer in (a role removed in Entra ID):
    the conversation stays readable, and its next turn is refused with the way out. The
    conversation's own deployment was checked when it was locked; another (picked in the
    composer, or the default) costs a query."""
    if deployment is None or deployment.pk == getattr(conversation, "open_deployment_id", None):
        return
    if not deployment.usable_by(user):
        raise TurnRefused(
            gettext(
                "You no longer have access to %(model)s. Your conversation is kept: "
                "pick another model under the message box to continue."
            )
            % {"model": deployment.name},
            code="deployment_not_allowed",
        )


def abandon_if_orphaned(message: Message, *, now: datetime) -> bool:
    """Mark an in-flight reply whose process is gone (its lease ran out) as failed; True if it
    was orphaned."""
    if message.alive_until is not None and message.alive_until > now:
        return False
    if message.resume_response_id and message.alive_until is not None:
        # A background reply is another process's to resume; failed only if none does.
        grace = timedelta(seconds=3 * settings.CHAT_REPLY_LEASE_SECONDS)
        if message.alive_until + grace > now:
            return False
    message.status = Message.Status.FAILED
    message.error_code = "interrupted"
    message.error = gettext(
        "The server restarted while this reply was being written. Retry to ask again."
    )
    message.completed_at = now
    message.save(update_fields=["status", "error_code", "error", "completed_at"])
    return True


def lock_conversation(
    *,
    user: User,
    conversation_id: int,
    session_key: str | None,
    client_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> LockedConversation:
    """The user's conversation, locked for the turn: concurrent sends queue behind each other.

    Checked in the turn's own transaction: the user is still active and the session that asks
    still exists (a process that missed the sign-out or deactivation still refuses)."""
    locked = conversation_lock(
        user=user,
        conversation_id=conversation_id,
        session_key=session_key,
        client_id=client_id,
        now=now or timezone.now(),
    )
    if locked is None:
        if not session_is_current(user_id=user.pk, session_key=session_key):
            raise SessionEnded(user.pk)
        raise Conversation.DoesNotExist
    if not locked.session_current:
        raise SessionEnded(user.pk)
    return locked


def refuse_over_rate_limit(*, user: User) -> None:
    wait = rate_limit_hit(user=user)
    if wait is not None:
        raise TurnRefused(
            gettext("You are sending messages faster than allowed. Try again in %(wait)s.")
            % {"wait": seconds_text(wait)},
            code="rate_limited",
        )


def refuse_over_quota(*, user: User, deployment: Deployment | None) -> None:
    """The daily quota of the deployment that will be asked first: with a failover group, the
    first member not cooling down."""
    if deployment is None:
        return
    if deployment.failover_group:
        deployment = failover_candidates(deployment, user_id=user.pk)[0]
    if refusal := quota_refusal(user=user, deployment=deployment):
        raise TurnRefused(refusal, code="quota_exceeded")


def refuse_while_in_flight(locked: LockedConversation, *, now: datetime) -> None:
    """Refuse while a reply of the conversation is being written (one whose process is gone is
    failed first); the replies are read only when the lock saw one in flight."""
    if not locked.in_flight:
        return
    replies = Message.objects.filter(
        conversation=locked.conversation,
        role=Message.Role.ASSISTANT,
        status__in=Message.IN_FLIGHT,
    )
    if [m for m in replies if not abandon_if_orphaned(m, now=now)]:
        raise TurnRefused(
            gettext(
                "A reply is still being written in this conversation. Wait for it to finish "
                "or press Stop, then send again."
            ),
            code="reply_in_flight",
        )
