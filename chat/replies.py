"""Replies in flight: the task that streams one reply, and the tabs watching it.

A reply runs as an ``asyncio.Task`` in the process that accepted the turn, independent of any
websocket: closing the tab does not stop it. Tabs in the same process watch it directly (deltas
go straight to their sockets, coalesced on a short timer); tabs served by other processes get
coalesced progress and control events through the channel layer. Deltas themselves never
travel through the channel layer, and the database is touched only at the start and the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.models import User
from chat import failover, fragments, llm, services
from chat.ledger import ledger_delete_orphan
from chat.models import Conversation, Deployment, Message
from chat.rendering import clean_model_text

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]

# Identifies this process in channel-layer events, so it can ignore its own.
PROCESS_ID = uuid.uuid4().hex
HEARTBEAT_INTERVAL = 10.0
# Frames a reply may send back to back before coalescing sets in.
FLUSH_BURST = 2.0
# How long a turn's save waits for its early request to be on its way: the save's ORM work on
# the database thread would otherwise compete for the GIL with the request being written.
EARLY_HEAD_START = 0.003

_active: dict[int, ActiveReply] = {}
# Early requests being closed, kept referenced until their copies are in the ledger.
_abandoning: set[asyncio.Task[None]] = set()

# Failures before the first token that another member of a failover group may answer instead.
FAILOVER_KINDS = frozenset(
    {llm.ErrorKind.RATE_LIMITED, llm.ErrorKind.UNAVAILABLE, llm.ErrorKind.TIMEOUT}
)


def tabs_group(conversation_id: int) -> str:
    return f"chat.conversation.{conversation_id}"


def control_group(conversation_id: int) -> str:
    return f"chat.reply-control.{conversation_id}"


def active_reply(conversation_id: int) -> ActiveReply | None:
    return _active.get(conversation_id)


def no_deployment_error() -> llm.LLMError:
    return llm.LLMError(
        kind=llm.ErrorKind.UNAVAILABLE,
        message="No model is available for this conversation. Please contact an administrator.",
        detail="no enabled deployment",
    )


def _split_trailing_high_surrogate(text: str) -> tuple[str, str]:
    """Hold back half of a surrogate pair split across deltas until its other half arrives."""
    if text and "\ud800" <= text[-1] <= "\udbff":
        return text[:-1], text[-1]
    return text, ""


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """One request for a reply, exactly as the gateway will send it."""

    deployment: Deployment
    input: str | list[dict[str, str]]
    previous_response_id: str | None
    instructions: str
    max_retries: int | None

    def same_as(self, other: ReplyRequest) -> bool:
        return (
            self.deployment.pk == other.deployment.pk
            and self.deployment.updated_at == other.deployment.updated_at
            and self.input == other.input
            and self.previous_response_id == other.previous_response_id
            and self.instructions == other.instructions
            and self.max_retries == other.max_retries
        )

    def stream(self) -> AsyncGenerator[llm.StreamEvent]:
        return llm.stream_reply(
            self.deployment,
            input=self.input,
            previous_response_id=self.previous_response_id,
            instructions=self.instructions,
            store=self.deployment.is_stateful,
            max_output_tokens=settings.CHAT_MAX_OUTPUT_TOKENS,
            max_retries=self.max_retries,
        )


class EarlyRequest:
    """A turn's model request, sent while the turn is being saved.

    When a conversation continues from its stored head, the request a turn will make is known
    before the turn is saved: the new text after ``previous_response_id``, with the
    conversation's instructions. Sending it at once hides the turn's database work behind the
    model's time to the first token. The user's text is still saved before the reply starts,
    and the request is only a guess: the reply adopts it when it is exactly the request the
    reply would make itself (see ``ReplyRequest.same_as``), and otherwise, or when the turn is
    refused, it is abandoned: closed once Azure has named its response, whose stored copy the
    ledger then deletes like any other.
    """

    def __init__(self, request: ReplyRequest) -> None:
        self.request = request
        self.named: llm.Started | None = None
        self._events: asyncio.Queue[llm.StreamEvent | None] = asyncio.Queue()
        self._answered = asyncio.Event()
        self._error: Exception | None = None
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="early-request")

    async def _pump(self) -> None:
        """Read the stream in a task of its own, so it starts at once; the reply reads on."""
        try:
            async for event in self.request.stream():
                if isinstance(event, llm.Started):
                    self.named = event
                    self._answered.set()
                self._events.put_nowait(event)
        except Exception as error:
            self._error = error  # the reply's own, raised where it reads
        finally:
            self._answered.set()
            self._events.put_nowait(None)

    async def events(self) -> AsyncGenerator[llm.StreamEvent]:
        try:
            while (event := await self._events.get()) is not None:
                yield event
            if self._error is not None:
                raise self._error
        finally:
            self._task.cancel()

    async def _answered_within(self, seconds: float) -> bool:
        """Wait until Azure names the response (or the stream ends), at most ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                await self._answered.wait()
        except TimeoutError:
            return False
        return True

    async def head_start(self) -> None:
        """Let the request go out first: until Azure names the response, at most
        EARLY_HEAD_START seconds (a request on a kept-alive connection leaves well within)."""
        await self._answered_within(EARLY_HEAD_START)

    def abandon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._close_and_forget())
        _abandoning.add(task)
        task.add_done_callback(_abandoning.discard)

    async def _close_and_forget(self) -> None:
        # Early requests continue a stored chain, so Azure keeps a copy of each: closing one
        # before Azure names its response would leave a copy nobody knows of.
        deployment = self.request.deployment
        if not await self._answered_within(settings.LLM_REQUEST_TIMEOUT):
            logger.warning("an unused early request on %s was never named", deployment.pk)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        named = self.named
        if named is not None and named.response_id:
            await database_sync_to_async(ledger_delete_orphan)(
                deployment=deployment,
                response_id=named.response_id,
                request_id=named.request_id,
                region=named.region,
            )


def reply_early(conversation: Conversation, text: str, *, user: User) -> EarlyRequest | None:
    """Send the turn's request now if the conversation, as this process last saw it,
    continues from a usable stored head with no reply in flight here; else None.

    Never where the turn may be refused for what it costs: a deployment with a daily quota,
    or a user at the rate limit (one cache read), since an abandoned request still costs its
    input tokens."""
    deployment = conversation.deployment
    if (
        not settings.CHAT_EARLY_REQUEST
        or deployment is None
        or not deployment.enabled
        or deployment.daily_token_quota
        or conversation.pk in _active
        or not conversation.head_usable_for(deployment)
        or services.rate_limit_reached(user=user)
    ):
        return None
    return EarlyRequest(
        ReplyRequest(
            deployment=deployment,
            input=text,
            previous_response_id=conversation.head_response_id,
            instructions=conversation.instructions,
            max_retries=0 if deployment.failover_group else None,
        )
    )


class ActiveReply:
    def __init__(self, turn: services.Turn, early: EarlyRequest | None = None) -> None:
        self.turn = turn
        self._early = early
        self.conversation_id = turn.conversation.pk
        self.message_id = turn.assistant_message.pk
        self.deployment: Deployment | None = turn.deployment
        self.parts: list[str] = []
        self._sent: list[str] = []
        self._pending: list[str] = []
        self._held = ""
        self._watchers: set[Send] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._frame_credit = FLUSH_BURST
        self._credited_at = 0.0
        self._last_flush = 0.0
        self._last_remote_flush = 0.0
        self.stop_requested = False
        self.ran = False
        self._remote_watchers = False
        self.task: asyncio.Task[None] | None = None
        self._layer = get_channel_layer()
        self._background: set[asyncio.Task[Any]] = set()

    # Watching

    def text(self) -> str:
        return "".join(self.parts)

    def watch(self, send: Send) -> str:
        """Start sending this reply's deltas to ``send``; returns the text sent out so far."""
        self._watchers.add(send)
        return "".join(self._sent)

    def unwatch(self, send: Send) -> None:
        self._watchers.discard(send)

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.stop_requested = True
            self.task.cancel()

    # Streaming

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_all(self, fragment: str) -> None:
        watchers = list(self._watchers)
        if len(watchers) == 1:
            await self._send_one(watchers[0], fragment)
        elif watchers:
            await asyncio.gather(*(self._send_one(send, fragment) for send in watchers))

    async def _send_one(self, send: Send, fragment: str) -> None:
        try:
            await send(fragment)
        except Exception:
            # A tab that went away mid-send; its consumer unwatches on disconnect.
            self._watchers.discard(send)

    def _refill(self, now: float) -> None:
        """Frame credit comes back at one per flush interval, up to FLUSH_BURST.

        A bucket rather than a minimum spacing: with deltas arriving about once per interval,
        a spacing rule lets every early delta push the next window later, and the lag ratchets
        up towards the interval."""
        earned = (now - self._credited_at) / settings.CHAT_FLUSH_INTERVAL
        self._frame_credit = min(FLUSH_BURST, self._frame_credit + earned)
        self._credited_at = now

    def _on_delta(self, text: str) -> Awaitable[None] | None:
        self.parts.append(text)
        self._pending.append(text)
        if self._flush_timer is not None:
            return None
        self._refill(time.monotonic())
        if self._frame_credit >= 1:
            self._frame_credit -= 1
            return self._flush()
        wait = (1 - self._frame_credit) * settings.CHAT_FLUSH_INTERVAL
        self._flush_timer = asyncio.get_running_loop().call_later(wait, self._flush_later)
        return None

    def _flush_later(self) -> None:
        self._flush_timer = None
        self._refill(time.monotonic())
        self._frame_credit -= 1
        self._spawn(self._flush())

    async def _flush(self) -> None:
        self._last_flush = time.monotonic()
        chunk, self._held = _split_trailing_high_surrogate(self._held + "".join(self._pending))
        chunk = clean_model_text(chunk)
        self._pending.clear()
        if chunk:
            self._sent.append(chunk)
            await self._send_all(fragments.stream_append(self.message_id, chunk))
        if (
            self._remote_watchers
            and self._last_flush - self._last_remote_flush >= settings.CHAT_REMOTE_FLUSH_INTERVAL
        ):
            self._last_remote_flush = self._last_flush
            self._spawn(self._publish({"type": "reply.progress", "text": self.text()}))

    async def _publish(self, event: dict[str, Any]) -> None:
        if self._layer is None:
            return
        event |= {"message_id": self.message_id, "origin": PROCESS_ID}
        try:
            await self._layer.group_send(tabs_group(self.conversation_id), event)
        except Exception:
            logger.warning("could not publish %s for message %s", event["type"], self.message_id)

    async def _listen_for_stop(self) -> None:
        """Tabs served by other processes reach this reply through the channel layer: to stop
        it, or to say they are watching (only then is progress published for them)."""
        if self._layer is None:
            return
        channel = await self._layer.new_channel()
        group = control_group(self.conversation_id)
        await self._layer.group_add(group, channel)
        try:
            while True:
                event = await self._layer.receive(channel)
                if event.get("message_id") != self.message_id:
                    continue
                if event.get("type") == "reply.stop":
                    self.stop()
                elif event.get("type") == "reply.watch" and not self._remote_watchers:
                    self._remote_watchers = True
                    self._spawn(self._publish({"type": "reply.progress", "text": self.text()}))
        finally:
            with contextlib.suppress(Exception):
                await self._layer.group_discard(group, channel)

    async def _heartbeat(self) -> None:
        # The first beat was given with the reply's preparation, off the first token's path.
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await database_sync_to_async(services.reply_heartbeat)(message_id=self.message_id)

    # The turn

    async def finish_unstarted(self) -> None:
        await self._finish(
            services.ReplyOutcome(
                text="",
                status=Message.Status.FAILED,
                deployment=self.deployment,
                error=shutdown_error(),
            )
        )

    async def run(self) -> None:
        self.ran = True
        started = time.monotonic()
        outcome = services.ReplyOutcome(
            text="", status=Message.Status.FAILED, deployment=self.deployment
        )
        helpers = [
            asyncio.ensure_future(self._listen_for_stop()),
            asyncio.ensure_future(self._heartbeat()),
        ]
        cancelled = False
        try:
            if self.deployment is None:
                outcome.error = no_deployment_error()
            else:
                await self._stream(self.deployment, outcome, started)
        except asyncio.CancelledError:
            cancelled = True
            # Saving what was streamed still has awaits ahead; they must not see the cancel.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome.status = (
                Message.Status.CANCELLED if self.stop_requested else Message.Status.INCOMPLETE
            )
            if not self.stop_requested:
                outcome.error = shutdown_error()
        except Exception:
            logger.exception("reply %s failed unexpectedly", self.message_id)
            outcome.status = Message.Status.FAILED
            outcome.error = llm.LLMError(
                kind=llm.ErrorKind.UNAVAILABLE,
                message="Something went wrong while writing this reply. Retry to ask again.",
                detail="unexpected error in reply task",
            )
        finally:
            for helper in helpers:
                helper.cancel()
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            if self._early is not None:
                self._early.abandon()
                self._early = None
        outcome.text = self.text()
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        await self._finish(outcome)
        if cancelled and not self.stop_requested:
            raise asyncio.CancelledError

    async def _stream(
        self, deployment: Deployment, outcome: services.ReplyOutcome, started: float
    ) -> None:
        """Stream from the deployment, or from the next healthy member of its failover group
        when it answers 429, 5xx or nothing at all before the first token."""
        turn = self.turn
        candidates, reply_input = await database_sync_to_async(self._prepare)(deployment)
        for position, candidate in enumerate(candidates):
            outcome.deployment = candidate
            if position > 0:
                # Response ids do not cross resources: the next member gets the whole history.
                reply_input = await database_sync_to_async(services.reply_input)(
                    conversation=turn.conversation,
                    deployment=candidate,
                    turn=turn,
                    force_rebuild=True,
                )
            last = position == len(candidates) - 1
            # With another member to ask, a busy one is not waited for.
            error = await self._attempt(
                candidate, reply_input, outcome, started, max_retries=None if last else 0
            )
            if error is None:
                return
            if self.parts or last:
                return
            await database_sync_to_async(failover.record_failure)(
                candidate, reason=error.kind.value
            )
            await self._forget_abandoned_response(candidate, outcome)
            logger.warning(
                "message %s: %s failed before the first token (%s); trying %s",
                self.message_id,
                candidate,
                error.kind.value,
                candidates[position + 1],
            )

    def _prepare(self, deployment: Deployment) -> tuple[list[Deployment], services.ReplyInput]:
        """Everything the first request needs, in one trip to the database thread."""
        services.reply_heartbeat(message_id=self.message_id)
        candidates = failover.failover_candidates(deployment)
        reply_input = services.reply_input(
            conversation=self.turn.conversation, deployment=candidates[0], turn=self.turn
        )
        return candidates, reply_input

    async def _attempt(
        self,
        deployment: Deployment,
        reply_input: services.ReplyInput,
        outcome: services.ReplyOutcome,
        started: float,
        *,
        max_retries: int | None,
    ) -> llm.LLMError | None:
        """One deployment's go at the reply; returns the error when another may take over."""
        turn = self.turn
        while True:
            outcome.context_rebuilt = reply_input.context_rebuilt
            rebuild = False
            request = ReplyRequest(
                deployment=deployment,
                input=reply_input.input,
                previous_response_id=reply_input.previous_response_id,
                instructions=turn.conversation.instructions,
                max_retries=max_retries,
            )
            # Every way out of this loop but a cancel follows the stream's terminal event, and
            # a cancel closes the stream from within: nothing is left open.
            async for event in self._open(request):
                match event:
                    case llm.TextDelta(text=text):
                        if outcome.first_token_ms is None:
                            outcome.first_token_ms = int((time.monotonic() - started) * 1000)
                            self._spawn(database_sync_to_async(failover.record_success)(deployment))
                        flushing = self._on_delta(text)
                        if flushing is not None:
                            await flushing
                    case llm.ReasoningDelta():
                        pass
                    case llm.Started():
                        outcome.response_id = event.response_id
                        outcome.request_id = event.request_id
                        outcome.region = event.region
                        outcome.stored_remotely = deployment.is_stateful
                    case llm.Completed():
                        self._take_result(outcome, event)
                        outcome.status = Message.Status.COMPLETED
                        outcome.becomes_head = deployment.is_stateful
                    case llm.Incomplete():
                        self._take_result(outcome, event)
                        outcome.status = Message.Status.INCOMPLETE
                        outcome.error = event.error or incomplete_error(event.reason)
                    case llm.Failed(error=error):
                        if (
                            error.kind == llm.ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
                            and reply_input.previous_response_id
                            and not self.parts
                        ):
                            rebuild = True
                            break
                        outcome.response_id = event.response_id or outcome.response_id
                        outcome.status = (
                            Message.Status.INCOMPLETE if self.parts else Message.Status.FAILED
                        )
                        outcome.error = error
                        if error.kind in FAILOVER_KINDS:
                            return error
            if not rebuild:
                if self.parts:
                    await database_sync_to_async(failover.record_success)(deployment)
                return None
            logger.info("message %s: stored context gone, rebuilding history", self.message_id)
            rebuilt = await database_sync_to_async(services.reply_input)(
                conversation=turn.conversation, deployment=deployment, turn=turn, force_rebuild=True
            )
            reply_input = services.ReplyInput(rebuilt.input, None, True)

    def _open(self, request: ReplyRequest) -> AsyncGenerator[llm.StreamEvent]:
        """The reply's stream: the early request when it is this very request, else a new one."""
        early, self._early = self._early, None
        if early is not None:
            if early.request.same_as(request):
                return early.events()
            logger.info(
                "message %s: the early request does not match; sending anew", self.message_id
            )
            early.abandon()
        return request.stream()

    async def _forget_abandoned_response(
        self, deployment: Deployment, outcome: services.ReplyOutcome
    ) -> None:
        """A failed member may still have stored what it started: have the ledger delete it."""
        if outcome.response_id and outcome.stored_remotely:
            await database_sync_to_async(ledger_delete_orphan)(
                deployment=deployment,
                response_id=outcome.response_id,
                request_id=outcome.request_id,
                region=outcome.region,
            )
        outcome.response_id = outcome.request_id = outcome.region = ""
        outcome.stored_remotely = False

    async def _forget_unsaved_response(self, outcome: services.ReplyOutcome) -> None:
        """The conversation went away mid-reply: Azure's copy must not outlive it unrecorded."""
        if outcome.response_id and outcome.stored_remotely and outcome.deployment is not None:
            try:
                await self._forget_abandoned_response(outcome.deployment, outcome)
            except Exception:
                logger.exception("could not queue deletion of %s", outcome.response_id)

    @staticmethod
    def _take_result(outcome: services.ReplyOutcome, event: llm.Completed | llm.Incomplete) -> None:
        outcome.response_id = event.response_id or outcome.response_id
        outcome.request_id = event.request_id or outcome.request_id
        outcome.region = event.region or outcome.region
        outcome.usage = event.usage

    async def _finish(self, outcome: services.ReplyOutcome) -> None:
        try:
            message = await database_sync_to_async(services.reply_finish)(
                turn=self.turn, outcome=outcome
            )
            final = fragments.message(message) + fragments.reply_controls(
                self.turn.conversation, in_flight_message=None
            )
            await self._send_all(final)
            await self._publish({"type": "reply.finished"})
        except services.ConversationGone:
            logger.info("message %s: conversation deleted while replying", self.message_id)
            await self._forget_unsaved_response(outcome)
        except Exception:
            logger.exception("could not save reply %s", self.message_id)
            await self._forget_unsaved_response(outcome)
        finally:
            if _active.get(self.conversation_id) is self:
                del _active[self.conversation_id]
            for task in list(self._background):
                task.cancel()


def shutdown_error() -> llm.LLMError:
    return llm.LLMError(
        kind=llm.ErrorKind.STREAM_DROPPED,
        message="The server stopped while this reply was being written. Retry to ask again.",
        detail="reply task cancelled by shutdown",
    )


def incomplete_error(reason: str) -> llm.LLMError:
    if reason == "content_filter":
        return llm.LLMError(
            kind=llm.ErrorKind.CONTENT_FILTERED,
            message="The reply was cut short by Azure's content filter.",
            detail="incomplete: content_filter",
        )
    if reason == "max_output_tokens":
        return llm.LLMError(
            kind=llm.ErrorKind.BAD_REQUEST,
            message="The reply reached the longest answer this deployment allows.",
            detail="incomplete: max_output_tokens",
        )
    return llm.LLMError(
        kind=llm.ErrorKind.STREAM_DROPPED,
        message="The reply ended early. Retry to ask again.",
        detail=f"incomplete: {reason}",
    )


def reply_start(turn: services.Turn, early: EarlyRequest | None = None) -> ActiveReply:
    """Run the turn's reply in this process; it outlives the socket or request that started it.

    ``early``: the request sent while the turn was being saved, for the reply to adopt."""
    existing = _active.get(turn.conversation.pk)
    if existing is not None and existing.message_id == turn.assistant_message.pk:
        if early is not None:
            early.abandon()
        return existing
    reply = ActiveReply(turn, early)
    _active[turn.conversation.pk] = reply
    reply.task = asyncio.get_running_loop().create_task(
        reply.run(), name=f"reply-{turn.assistant_message.pk}"
    )
    return reply


async def reply_watch_remotely(*, conversation_id: int, message_id: int) -> None:
    """Ask the process running a reply to publish its progress for a tab served here."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(
            control_group(conversation_id), {"type": "reply.watch", "message_id": message_id}
        )


async def reply_stop(*, conversation_id: int, message_id: int | None = None) -> None:
    """Stop the conversation's reply, wherever it runs."""
    reply = _active.get(conversation_id)
    if reply is not None and (message_id is None or reply.message_id == message_id):
        reply.stop()
        return
    layer = get_channel_layer()
    if layer is not None and message_id is not None:
        await layer.group_send(
            control_group(conversation_id), {"type": "reply.stop", "message_id": message_id}
        )


async def replies_shutdown() -> None:
    """Let replies in flight finish saving what they have when the server stops."""
    stopping = list(_active.values())
    tasks = [reply.task for reply in stopping if reply.task is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if _abandoning:
        # Unused early requests put their copies in the ledger before the process goes.
        await asyncio.wait(set(_abandoning), timeout=settings.LLM_REQUEST_TIMEOUT)
    for reply in stopping:
        if not reply.ran:
            # Cancelled before its first step: nothing streamed, but the turn must not stay
            # pending for ever.
            await reply.finish_unstarted()
