"""Background mode: a reply that outlives its stream, and its process.

A deployment in background mode asks Azure to generate the reply whatever becomes of the
connection (``background=true``, ``stream=true``). The reply keeps its ``ResumePoint``: Azure's
response and the sequence number of the last delta taken. When the stream drops, the rest is
taken up from Azure's copy after that number, so nothing is lost and nothing repeated. The
lease renewal saves the point with the text so far, so when the process dies another one takes
the reply over (``replies_take_over``) and resumes it from there. Stop cancels it on Azure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

from django.conf import settings

from chat import llm
from chat.models import Deployment, Message

logger = logging.getLogger(__name__)

# Resumes in a row that bring nothing new before the reply is given up as dropped.
MAX_QUIET_RESUMES = 5

# Failures of the line, not of the model: the reply goes on on Azure and can be taken up.
_LINE_FAILURES = frozenset({llm.ErrorKind.STREAM_DROPPED, llm.ErrorKind.TIMEOUT})
_REQUEST_FAILURES = frozenset({llm.ErrorKind.UNAVAILABLE, llm.ErrorKind.RATE_LIMITED})

# Cancels sent to Azure, referenced until they end (asyncio keeps only weak references).
_cancelling: set[asyncio.Task[None]] = set()


class ResumePoint:
    """Where a background reply stands on Azure: the response, and the last event taken."""

    def __init__(self) -> None:
        self.deployment: Deployment | None = None
        self.response_id = ""
        self.after = -1

    @classmethod
    def of_message(cls, message: Message) -> ResumePoint:
        """The point a reply's lease last saved, for the process that takes it over."""
        point = cls()
        point.deployment = message.deployment
        point.response_id = message.resume_response_id
        point.after = message.resume_after if message.resume_after is not None else -1
        return point

    @property
    def resumable(self) -> bool:
        return self.deployment is not None and bool(self.response_id)

    def saved_fields(self, text: str) -> dict[str, Any] | None:
        """What the lease saves with itself: the text so far goes with the point it reached."""
        if not self.resumable:
            return None
        return {
            "text": text,
            "deployment": self.deployment,
            "resume_response_id": self.response_id,
            "resume_after": self.after,
        }


def _may_resume(error: llm.LLMError) -> bool:
    # A 5xx or 429 answering the resume request itself (it has a status; an in-stream
    # ``response.failed`` has none and is the model's own end).
    return error.kind in _LINE_FAILURES or (
        error.kind in _REQUEST_FAILURES and error.status is not None
    )


def _wait(quiet: int) -> float:
    return min(0.25 * 2.0**quiet, float(settings.LLM_MAX_RETRY_WAIT))


async def resuming(
    deployment: Deployment, events: AsyncGenerator[llm.StreamEvent], point: ResumePoint
) -> AsyncGenerator[llm.StreamEvent]:
    """The reply's events, and on a background deployment, the rest of them from Azure's copy
    each time the stream fails after Azure named the response."""
    if not deployment.runs_in_background:
        async with contextlib.aclosing(events):
            async for event in events:
                yield event
        return
    point.deployment = deployment
    quiet = 0
    while True:
        dropped: llm.Failed | None = None
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, llm.TextDelta | llm.ReasoningDelta):
                    if event.sequence >= 0:
                        point.after = event.sequence
                    quiet = 0
                elif isinstance(event, llm.Started):
                    # ``response.created`` is event 0 of every stream.
                    point.response_id, point.after = event.response_id, 0
                elif (
                    isinstance(event, llm.Failed)
                    and point.response_id
                    and _may_resume(event.error)
                    and quiet < MAX_QUIET_RESUMES
                ):
                    dropped = event
                    break
                yield event
        if dropped is None:
            return
        logger.info(
            "response %s: stream failed (%s); resuming after event %d",
            point.response_id,
            dropped.error.kind.value,
            point.after,
        )
        await asyncio.sleep(_wait(quiet))
        quiet += 1
        events = llm.resume_reply(deployment, point.response_id, starting_after=point.after)


async def taken_up(point: ResumePoint) -> AsyncGenerator[llm.StreamEvent]:
    """A reply taken over from a process that is gone: its response, then the rest of it."""
    assert point.deployment is not None
    yield llm.Started(point.response_id)
    rest = llm.resume_reply(point.deployment, point.response_id, starting_after=point.after)
    async for event in resuming(point.deployment, rest, point):
        yield event


def cancel_remotely(point: ResumePoint) -> None:
    """Stop: a background reply would go on (and cost) on Azure; ask Azure to cancel it."""
    deployment = point.deployment
    if deployment is None or not point.response_id or not deployment.runs_in_background:
        return
    task = asyncio.get_running_loop().create_task(_cancel(deployment, point.response_id))
    _cancelling.add(task)
    task.add_done_callback(_cancelling.discard)


async def _cancel(deployment: Deployment, response_id: str) -> None:
    try:
        await llm.cancel_response(deployment, response_id)
    except llm.LLMRequestError as exc:
        logger.warning("response %s: could not cancel it: %s", response_id, exc.error.detail)
