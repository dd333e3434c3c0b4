"""The runner: asks the gateway for one reply and says how it ended.

It streams from the conversation's deployment, or from the next healthy member of its failover
group when one answers 429, 5xx or nothing at all before the first token; it rebuilds the
history when Azure no longer has the stored chain; it adopts the early request when that is
exactly its own. Text goes to the relay, the copies Azure names go to the ledger, and the end
is a ``ReplyOutcome``. Cancelling the task that runs it (Stop, shutdown) leaves ``outcome``
able to say what was streamed so far.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError

from chat import failover, llm, services
from chat.models import Deployment, Message
from chat.replies.copies import Copies
from chat.replies.failures import incomplete_error, no_deployment_error
from chat.replies.relay import Relay
from chat.replies.request import EarlyRequest, ReplyRequest, reasoning_effort_of
from chat.replies.resume import ResumePoint, cancel_remotely, resuming, taken_up
from chat.saving import ReplyOutcome

logger = logging.getLogger(__name__)

# Failures before the first token that another member of a failover group may answer instead.
FAILOVER_KINDS = frozenset(
    {llm.ErrorKind.RATE_LIMITED, llm.ErrorKind.UNAVAILABLE, llm.ErrorKind.TIMEOUT}
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything the first request needs from the database: the members of the deployment's
    failover group to try, in order, and the first one's input."""

    candidates: list[Deployment]
    reply_input: services.ReplyInput


def reply_prepare(turn: services.Turn) -> Prepared | None:
    """The reply's first database work, for the turn's own trip to the database thread (sync)."""
    if turn.deployment is None:
        return None
    candidates = failover.failover_candidates(turn.deployment, user_id=turn.conversation.owner_id)
    reply_input = services.reply_input(
        conversation=turn.conversation, deployment=candidates[0], turn=turn
    )
    return Prepared(candidates, reply_input)


def reply_prepare_ahead(turn: services.Turn) -> Prepared | None:
    """``reply_prepare`` in the turn's own trip, once the turn is saved; None for a turn not
    created now, or when the database fails here: the reply then prepares on its own, and a
    failure there is saved with it (the turn was not lost)."""
    if not turn.created:
        return None
    try:
        return reply_prepare(turn)
    except DatabaseError:
        return None


class Runner:
    def __init__(
        self,
        turn: services.Turn,
        relay: Relay,
        copies: Copies,
        early: EarlyRequest | None,
        taken_over: ResumePoint | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        self.turn = turn
        self.relay = relay
        self.copies = copies
        self._early = early
        # A background reply's place on Azure; given, the reply is taken over from there.
        self.resume = taken_over or ResumePoint()
        self._taken_over = taken_over
        self._prepared = prepared
        self.started = time.monotonic()
        # How the reply stands; ``outcome`` reads it at any point.
        self.deployment: Deployment | None = turn.deployment
        self.status: str = Message.Status.FAILED
        self.error: llm.LLMError | None = None
        self.answer: llm.Started | None = None
        self.usage: llm.Usage | None = None
        self.context_rebuilt = False
        self.first_token_ms: int | None = None
        self.stored = False
        self.reasoning_items: list[dict[str, Any]] = []
        # A request is out that Azure keeps a copy of and has not named yet: Stop waits for
        # the name (``stop_when_named``) so that the copy is in the ledger, and cancelled on
        # Azure in background mode, before the stream is closed.
        self.unnamed = False
        self.stop_when_named = False

    def outcome(
        self, *, status: str | None = None, error: llm.LLMError | None = None
    ) -> ReplyOutcome:
        answer = self.answer
        stored = self.stored and answer is not None and bool(answer.response_id)
        status = status or self.status
        return ReplyOutcome(
            text=self.relay.text(),
            status=status,
            deployment=self.deployment,
            response_id=answer.response_id if answer else "",
            request_id=answer.request_id if answer else "",
            region=answer.region if answer else "",
            endpoint=self.deployment.endpoint if self.deployment else "",
            usage=self.usage,
            error=error or self.error,
            context_rebuilt=self.context_rebuilt,
            first_token_ms=self.first_token_ms,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            stored_remotely=stored,
            becomes_head=stored and status == Message.Status.COMPLETED,
            reasoning_summary=self.relay.thinking(),
            reasoning_items=tuple(self.reasoning_items),
        )

    def abandon_early(self) -> None:
        if self._early is not None:
            self._early.abandon()
            self._early = None

    async def run(self) -> ReplyOutcome:
        if self.deployment is None:
            return self.outcome(error=no_deployment_error())
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            prepared = await database_sync_to_async(self._prepare)(self.deployment)
        candidates, reply_input = prepared.candidates, prepared.reply_input
        for position, candidate in enumerate(candidates):
            if position > 0:
                # Response ids do not cross resources: the next member gets the whole history.
                reply_input = await database_sync_to_async(services.reply_input)(
                    conversation=self.turn.conversation,
                    deployment=candidate,
                    turn=self.turn,
                    force_rebuild=True,
                )
            last = position == len(candidates) - 1
            # With another member to ask, a busy one is not waited for.
            error = await self._attempt(candidate, reply_input, max_retries=None if last else 0)
            if error is None or self.relay.parts or last:
                break
            await database_sync_to_async(failover.record_failure)(
                candidate, reason=error.kind.value
            )
            logger.warning(
                "message %s: %s failed before the first token (%s); trying %s",
                self.turn.assistant_message.pk,
                candidate,
                error.kind.value,
                candidates[position + 1],
            )
        return self.outcome()

    def _prepare(self, deployment: Deployment) -> Prepared:
        """Everything the first request needs, in one trip to the database thread."""
        if self._taken_over is None:
            prepared = reply_prepare(self.turn)
            assert prepared is not None  # the turn has a deployment
            return prepared
        reply_input = services.reply_input(
            conversation=self.turn.conversation, deployment=deployment, turn=self.turn
        )
        return Prepared([deployment], reply_input)

    def _begin_attempt(self, deployment: Deployment, reply_input: services.ReplyInput) -> None:
        """A new request: nothing of an earlier one's failure or copy is this one's."""
        self.deployment = deployment
        self.context_rebuilt = reply_input.context_rebuilt
        self.status = Message.Status.FAILED
        self.error = None
        self.answer = None
        self.stored = False
        self.reasoning_items = []

    async def _attempt(
        self,
        deployment: Deployment,
        reply_input: services.ReplyInput,
        *,
        max_retries: int | None,
    ) -> llm.LLMError | None:
        """One deployment's go at the reply; returns the error when another may take over."""
        while True:
            self._begin_attempt(deployment, reply_input)
            request = ReplyRequest(
                deployment=deployment,
                input=reply_input.input,
                previous_response_id=reply_input.previous_response_id,
                instructions=self.turn.conversation.instructions,
                max_retries=max_retries,
                reasoning_effort=reasoning_effort_of(self.turn.conversation, deployment),
            )
            rebuild = False
            async with contextlib.aclosing(self._open(request)) as events:
                async for event in events:
                    match event:
                        case llm.Requesting():
                            self.unnamed = deployment.is_stateful
                        case llm.Retrying():
                            # Refused before it was named: no copy, and Stop need not wait.
                            self.unnamed = False
                            if self.stop_when_named:
                                self._stopped()
                                return None
                        case llm.TextDelta(text=text):
                            if self.first_token_ms is None:
                                self.first_token_ms = int((time.monotonic() - self.started) * 1000)
                            self.relay.add(text)
                        case llm.ReasoningDelta(text=text):
                            self.relay.add_thinking(text)
                        case llm.ReasoningItem(item=item):
                            self.reasoning_items.append(item)
                        case llm.Started():
                            self.unnamed = False
                            self.answer = event
                            self.stored = deployment.is_stateful
                            if self.stored:
                                self.copies.named_by(deployment, event)
                            if self.stop_when_named:
                                self._stopped()
                                return None
                        case llm.Completed():
                            self.unnamed = False
                            self._take_result(event)
                            self.status = Message.Status.COMPLETED
                        case llm.Incomplete():
                            self.unnamed = False
                            self._take_result(event)
                            self.status = Message.Status.INCOMPLETE
                            self.error = event.error or incomplete_error(event.reason)
                        case llm.Failed(error=error):
                            self.unnamed = False
                            if self.stop_when_named:
                                self._stopped()
                                return None  # no failover or rebuild after Stop
                            if (
                                error.kind == llm.ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND
                                and reply_input.previous_response_id
                                and not self.relay.began
                            ):
                                rebuild = True
                                break
                            self.status = (
                                Message.Status.INCOMPLETE
                                if self.relay.parts
                                else Message.Status.FAILED
                            )
                            self.error = error
                            if error.kind in FAILOVER_KINDS and not self.relay.began:
                                return error
            if not rebuild:
                if self.relay.parts:
                    await database_sync_to_async(failover.record_success)(deployment)
                return None
            logger.info(
                "message %s: stored context gone, rebuilding history",
                self.turn.assistant_message.pk,
            )
            rebuilt = await database_sync_to_async(services.reply_input)(
                conversation=self.turn.conversation,
                deployment=deployment,
                turn=self.turn,
                force_rebuild=True,
            )
            reply_input = services.ReplyInput(rebuilt.input, None, True)

    def _stopped(self) -> None:
        """Stop, as pressed while Azure had not yet named the response: it is named now (its
        copy on its way to the ledger, a background one asked to cancel), or no request is out."""
        self.status = Message.Status.CANCELLED
        cancel_remotely(self.resume)

    def _open(self, request: ReplyRequest) -> AsyncGenerator[llm.StreamEvent]:
        """The reply's stream: the early request when it is this very request, else a new one
        (or, for a reply taken over, the rest of Azure's copy); resumed when it drops."""
        taken_over, self._taken_over = self._taken_over, None
        if taken_over is not None:
            return taken_up(taken_over)
        early, self._early = self._early, None
        if early is not None:
            if early.request.same_as(request):
                return resuming(request.deployment, early.events(), self.resume)
            logger.info(
                "message %s: the early request does not match; sending anew",
                self.turn.assistant_message.pk,
            )
            early.abandon()
        return resuming(request.deployment, request.stream(), self.resume)

    def _take_result(self, event: llm.Completed | llm.Incomplete) -> None:
        named = self.answer.response_id if self.answer is not None else ""
        if event.response_id and event.response_id != named:
            self.answer = llm.Started(event.response_id, event.request_id, event.region)
        self.usage = event.usage
