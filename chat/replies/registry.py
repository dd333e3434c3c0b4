"""The registry: the replies in flight in this process, one per conversation, and the ways to
start, find, stop and (at shutdown) settle them, here or in another process."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import translation

from accounts.models import User
from chat import services
from chat.models import Conversation, Message
from chat.rate_limits import rate_limit_reached
from chat.replies.bridge import control_group, layer_send, tabs_group
from chat.replies.reply import ActiveReply
from chat.replies.request import EarlyRequest, ReplyRequest, abandoning, reasoning_effort_of
from chat.replies.resume import ResumePoint
from chat.replies.runner import Prepared
from chat.saving import replies_take_over, reply_lease_renew_every

logger = logging.getLogger(__name__)

_active: dict[int, ActiveReply] = {}


def active_reply(conversation_id: int) -> ActiveReply | None:
    return _active.get(conversation_id)


def reply_start(
    turn: services.Turn, early: EarlyRequest | None = None, prepared: Prepared | None = None
) -> ActiveReply:
    """Run the turn's reply in this process; it outlives the socket or request that started it.

    ``early``: the request sent while the turn was being saved, for the reply to adopt;
    ``prepared``: its first database work, done in the turn's own trip (``reply_prepare``)."""
    existing = _active.get(turn.conversation.pk)
    if existing is not None and existing.message_id == turn.assistant_message.pk:
        if early is not None:
            early.abandon()
        return existing
    return _run(ActiveReply(turn, early, prepared=prepared))


def _run(reply: ActiveReply) -> ActiveReply:
    _active[reply.conversation_id] = reply
    reply.task = asyncio.get_running_loop().create_task(
        _in_language(translation.get_language(), reply), name=f"reply-{reply.message_id}"
    )
    reply.task.add_done_callback(lambda _: _forget(reply))
    return reply


def reply_take_over(message: Message) -> ActiveReply | None:
    """Resume here a background reply whose process is gone (this process claimed it)."""
    if message.reply_to is None or message.conversation.pk in _active:
        return None
    turn = services.Turn(message.conversation, message.deployment, message.reply_to, message, False)
    logger.info("message %s: taking over its reply from a process that is gone", message.pk)
    return _run(ActiveReply(turn, taken_over=ResumePoint.of_message(message)))


async def replies_sweep() -> None:
    """Until cancelled: take over the background replies whose process is gone, whichever
    process of the site notices first (the lease decides: one claim wins)."""
    while True:
        await asyncio.sleep(reply_lease_renew_every())
        try:
            for message in await database_sync_to_async(replies_take_over)():
                reply_take_over(message)
        except DatabaseError:
            logger.warning("could not look for abandoned background replies; trying again")


async def _in_language(language: str, reply: ActiveReply) -> None:
    """The reply renders its frames and explains its failures in the language of whoever
    started it: the socket's or the request's, always the conversation owner's."""
    with translation.override(language):
        await reply.run()


def _forget(reply: ActiveReply) -> None:
    if _active.get(reply.conversation_id) is reply:
        del _active[reply.conversation_id]


def reply_early(conversation: Conversation, text: str, *, user: User) -> EarlyRequest | None:
    """Send the turn's request now if the conversation, as this process last saw it,
    continues from a usable stored head with no reply in flight here; else None. A reply whose
    final frame is out counts as settled even while it tidies up (the tab may already send).

    Never where the turn may be refused for what it costs: a deployment with a daily quota,
    or a user at the rate limit (one cache read), since an abandoned request still costs its
    input tokens."""
    deployment = conversation.deployment
    in_flight = _active.get(conversation.pk)
    if (
        not settings.CHAT_EARLY_REQUEST
        or deployment is None
        or not deployment.enabled
        or deployment.daily_token_quota
        or (in_flight is not None and not in_flight.settled)
        or not conversation.head_usable_for(deployment)
        or rate_limit_reached(user=user)
    ):
        return None
    return EarlyRequest(
        ReplyRequest(
            deployment=deployment,
            input=text,
            previous_response_id=conversation.head_response_id,
            instructions=conversation.instructions,
            max_retries=0 if deployment.failover_group else None,
            reasoning_effort=reasoning_effort_of(conversation, deployment),
        )
    )


async def reply_watch_remotely(*, conversation_id: int, message_id: int) -> None:
    """Ask the process running a reply to publish its progress for a tab served here."""
    await layer_send(
        control_group(conversation_id), {"type": "reply.watch", "message_id": message_id}
    )


async def branch_shown(*, conversation_id: int, origin: str = "") -> None:
    """Tell the conversation's tabs that another branch is shown: they show it too."""
    await layer_send(tabs_group(conversation_id), {"type": "branch.shown", "origin": origin})


async def reply_stop(*, conversation_id: int, message_id: int | None = None) -> None:
    """Stop the conversation's reply, wherever it runs."""
    reply = _active.get(conversation_id)
    if reply is not None and (message_id is None or reply.message_id == message_id):
        reply.stop()
        return
    if message_id is not None:
        await layer_send(
            control_group(conversation_id), {"type": "reply.stop", "message_id": message_id}
        )


async def replies_shutdown() -> None:
    """Let replies in flight save what they have when the server stops (within
    CHAT_SHUTDOWN_SAVE_SECONDS: a database that stays down cannot hold the process for ever)."""
    stopping = list(_active.values())
    for reply in stopping:
        reply.shut_down(save_within=settings.CHAT_SHUTDOWN_SAVE_SECONDS)
    tasks = [reply.task for reply in stopping if reply.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=settings.CHAT_SHUTDOWN_SAVE_SECONDS + 5)
    if abandoning:
        # Unused early requests put their copies in the ledger before the process goes.
        await asyncio.wait(set(abandoning), timeout=settings.LLM_REQUEST_TIMEOUT)
    for reply in stopping:
        if not reply.ran:
            # Cancelled before its first step: nothing streamed, but the turn must not stay
            # pending for ever.
            await reply.finish_unstarted()
