"""A reply's request to the model, and the early request: the same, sent while the turn saves.

Early requests are off by default (``CHAT_EARLY_REQUEST``): an unused one (a replayed send, a
refused turn, a stale guess) still costs the whole chain's input tokens, and one sent while the
database is failing cannot be recorded. See the README and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import llm
from chat.catalog import reasoning_effort_for
from chat.ledger import ledger_delete_orphan
from chat.models import Conversation, Deployment

logger = logging.getLogger(__name__)

# How long a turn's save waits for its early request to be on its way: the save's ORM work on
# the database thread would otherwise compete for the GIL with the request being written.
EARLY_HEAD_START = 0.003

# Early requests being closed, kept referenced until their copies are in the ledger.
abandoning: set[asyncio.Task[None]] = set()


def reasoning_effort_of(conversation: Conversation, deployment: Deployment) -> str | None:
    """The effort a reply on ``deployment`` asks for: the conversation's choice, else the
    deployment's default, each only where its model takes it (a choice made for another
    model may not fit this one); None leaves it to the model."""
    return reasoning_effort_for(
        deployment.model, conversation.reasoning_effort, deployment.reasoning_effort
    )


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """One request for a reply, exactly as the gateway will send it."""

    deployment: Deployment
    input: str | list[dict[str, Any]]
    previous_response_id: str | None
    instructions: str
    max_retries: int | None
    reasoning_effort: str | None = None

    @property
    def endpoint(self) -> str:
        """The resource this request goes to, as its copy's ledger row records it."""
        return self.deployment.endpoint

    def same_as(self, other: ReplyRequest) -> bool:
        return (
            self.deployment.pk == other.deployment.pk
            and self.deployment.updated_at == other.deployment.updated_at
            and self.input == other.input
            and self.previous_response_id == other.previous_response_id
            and self.instructions == other.instructions
            and self.max_retries == other.max_retries
            and self.reasoning_effort == other.reasoning_effort
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
            background=self.deployment.runs_in_background,
            reasoning_effort=self.reasoning_effort,
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
        abandoning.add(task)
        task.add_done_callback(abandoning.discard)

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
                endpoint=self.request.endpoint,
                request_id=named.request_id,
                region=named.region,
            )
