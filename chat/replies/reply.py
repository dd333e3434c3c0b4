"""One reply in flight in this process: it runs, it is saved, and its final frame goes out.

The reply runs as an ``asyncio.Task`` independent of any websocket: closing the tab does not
stop it. Stop cancels it while it streams and never afterwards: once the reply is being saved
nothing can interrupt the save, and pressing Stop again changes nothing. A database error while
saving holds the finished reply in memory and tries again with backoff for up to
``CHAT_SAVE_RETRY_SECONDS``; only a conversation that is really gone counts as gone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils.translation import gettext_lazy as _

from chat import fragments, services
from chat.models import Message
from chat.replies.admission import admission
from chat.replies.bridge import Bridge
from chat.replies.copies import Copies
from chat.replies.failures import shutdown_error, unexpected_error
from chat.replies.relay import FellBehind, Relay, Send
from chat.replies.request import EarlyRequest
from chat.replies.resume import ResumePoint, cancel_remotely
from chat.replies.runner import Prepared, Runner
from chat.saving import (
    ConversationGone,
    ReplyOutcome,
    ReplySuperseded,
    reply_finish,
    reply_lease_give_up,
    reply_lease_renew_every,
    reply_renew_lease,
    reply_text,
)

logger = logging.getLogger(__name__)

_SAVE_RETRY_MAX = 10.0
# How long Stop waits for Azure to name a response that it keeps a copy of (see ``stop``).
NAMING_WAIT = 5.0
SAVE_LOST_NOTICE = _(
    "This reply could not be saved: the database is unavailable. Copy what you need from it; "
    "it will be gone when you reload."
)


class Phase(enum.Enum):
    STREAMING = "streaming"
    SAVING = "saving"
    DONE = "done"


class ActiveReply:
    def __init__(
        self,
        turn: services.Turn,
        early: EarlyRequest | None = None,
        taken_over: ResumePoint | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        self.turn = turn
        self.conversation_id = turn.conversation.pk
        self.message_id = turn.assistant_message.pk
        self.relay = Relay(self.message_id)
        self.copies = Copies(
            relay=self.relay,
            user_id=turn.conversation.owner_id,
            conversation_id=self.conversation_id,
        )
        self.runner = Runner(turn, self.relay, self.copies, early, taken_over, prepared)
        self._taken_over = taken_over is not None
        self.bridge = Bridge(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            stop=self.stop,
            shown=self.relay.shown,
        )
        self.relay.flushed = self.bridge.progress
        self.phase = Phase.STREAMING
        self.stop_requested = False
        self.ran = False
        self.task: asyncio.Task[None] | None = None
        self.save_deadline = settings.CHAT_SAVE_RETRY_SECONDS

    # Watching

    def watch(self, send: Send, *, fell_behind: FellBehind | None = None) -> None:
        self.relay.watch(send, fell_behind=fell_behind)

    def unwatch(self, send: Send) -> None:
        self.relay.unwatch(send)

    def stop(self) -> None:
        """Stop streaming and save what was written; idempotent, and a no-op once saving.

        While Azure has not yet named the response of a request it keeps a copy of, the stop
        waits for the name (at most NAMING_WAIT seconds): closing the stream before would leave
        a copy no ledger row knows of, and in background mode a reply generating on."""
        if self.phase is not Phase.STREAMING or self.stop_requested:
            return
        self.stop_requested = True
        # A reply whose task has not begun sees the flag when it does, and saves at once.
        if not self.ran or self.task is None or self.task.done():
            return
        if self.runner.unnamed:
            self.runner.stop_when_named = True
            asyncio.get_running_loop().call_later(NAMING_WAIT, self._stop_unnamed)
            return
        self.task.cancel()

    def _stop_unnamed(self) -> None:
        if self.phase is Phase.STREAMING and self.task is not None and not self.task.done():
            logger.warning(
                "message %s: stopped before Azure named its response; a copy it keeps is not "
                "in the ledger",
                self.message_id,
            )
            self.task.cancel()

    @property
    def settled(self) -> bool:
        """Saved and its final frame sent: what is left (bridge, ledger) keeps no turn waiting."""
        return self.phase is Phase.DONE

    def shut_down(self, *, save_within: float) -> None:
        """The server is stopping: stop streaming; what was written is saved within
        ``save_within`` seconds (a database that stays down cannot hold the process)."""
        self.save_deadline = min(self.save_deadline, save_within)
        if self.phase is not Phase.STREAMING or self.stop_requested:
            return
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # The turn

    async def run(self) -> None:
        self.ran = True
        helpers = [
            asyncio.ensure_future(self.bridge.listen()),
            asyncio.ensure_future(self._keep_lease()),
        ]
        by_shutdown = False
        if self._taken_over and self.turn.assistant_message.text:
            # The text its first process had streamed, up to the point it is resumed after.
            self.relay.add(self.turn.assistant_message.text)
        try:
            if self.stop_requested:  # stopped before it began
                outcome = self.runner.outcome(status=Message.Status.CANCELLED)
            else:
                outcome = await self._admitted_run()
        except asyncio.CancelledError:
            # Saving what was streamed still has awaits ahead; they must not see the cancel.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if self.stop_requested:
                cancel_remotely(self.runner.resume)
                outcome = self.runner.outcome(status=Message.Status.CANCELLED)
            else:
                by_shutdown = True
                outcome = self.runner.outcome(
                    status=Message.Status.INCOMPLETE, error=shutdown_error()
                )
        except Exception:
            logger.exception("reply %s failed unexpectedly", self.message_id)
            outcome = self.runner.outcome(status=Message.Status.FAILED, error=unexpected_error())
        finally:
            self.phase = Phase.SAVING
            self.runner.abandon_early()
        try:
            if not (by_shutdown and await self._hand_over()):
                await self._finish(outcome)
        finally:
            for helper in helpers:
                helper.cancel()
        if by_shutdown:
            raise asyncio.CancelledError

    async def _admitted_run(self) -> ReplyOutcome:
        """The runner, once this process can stream one more reply smoothly (``admission``);
        meanwhile the tabs say the reply starts soon."""
        queued = False

        def waiting() -> None:
            nonlocal queued
            queued = True
            self.relay.announce(fragments.reply_queued(self.message_id, queued=True), lasting=True)

        await admission.enter(waiting=waiting)
        try:
            if queued:
                self.relay.announce(
                    fragments.reply_queued(self.message_id, queued=False), lasting=False
                )
            return await self.runner.run()
        finally:
            admission.leave()

    async def _hand_over(self) -> bool:
        """At shutdown, a background reply is left to another process to resume at once,
        rather than saved cut short; False when it cannot be (then it is saved as it is)."""
        resume = self.runner.resume.saved_fields(self.relay.text())
        if resume is None:
            return False
        try:
            given: bool = await database_sync_to_async(reply_lease_give_up)(
                message_id=self.message_id, resume=resume
            )
        except DatabaseError:
            return False
        if given:
            logger.info("message %s: left for another process to resume", self.message_id)
            self.relay.finish("")
            self.phase = Phase.DONE
        return given

    async def finish_unstarted(self) -> None:
        """Settle a turn whose reply was cancelled before its first step (at shutdown)."""
        self.phase = Phase.SAVING
        self.runner.abandon_early()
        await self._finish(
            self.runner.outcome(status=Message.Status.FAILED, error=shutdown_error())
        )

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(reply_lease_renew_every())
            # Taken now, so that the text saved is the text up to the point saved.
            resume = self.runner.resume.saved_fields(self.relay.text())
            try:
                await database_sync_to_async(reply_renew_lease)(
                    message_id=self.message_id, resume=resume
                )
            except DatabaseError:
                logger.warning(
                    "message %s: could not renew its lease; trying again", self.message_id
                )

    async def _save(self, outcome: ReplyOutcome) -> Message | None:
        deadline = time.monotonic() + self.save_deadline
        delay = 0.1
        rendered = reply_text(outcome)
        while True:
            try:
                saved: Message = await database_sync_to_async(reply_finish)(
                    message=self.turn.assistant_message,
                    conversation=self.turn.conversation,
                    outcome=outcome,
                    rendered=rendered,
                )
                return saved
            except ConversationGone:
                logger.info("message %s: conversation deleted while replying", self.message_id)
                return None
            except ReplySuperseded:
                logger.warning("message %s: no longer in flight; not overwritten", self.message_id)
                return None
            except DatabaseError:
                if time.monotonic() >= deadline:
                    logger.error(
                        "message %s: not saved after %.0fs of database errors",
                        self.message_id,
                        self.save_deadline,
                    )
                    raise
                logger.warning("message %s: save failed; retrying in %.1fs", self.message_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _SAVE_RETRY_MAX)

    async def _finish(self, outcome: ReplyOutcome) -> None:
        try:
            message = await self._save(outcome)
        except DatabaseError:
            self.relay.finish(fragments.notice(SAVE_LOST_NOTICE))
            self.phase = Phase.DONE
            await self.copies.forget_all_but(None)
            return
        if message is not None:
            self.relay.finish(
                fragments.message(message)
                + fragments.reply_controls(self.turn.conversation, in_flight_message=None)
            )
        else:
            self.relay.finish("")
        self.phase = Phase.DONE
        await self.bridge.finished()
        await self.copies.forget_all_but(outcome.response_id if message is not None else None)
