"""The simulator's memory: responses kept for their retention, as Azure keeps them (in-process)."""

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from azure_sim.composing import ReplyPlan, count_tokens

RUNNING = frozenset({"queued", "in_progress"})


class Signal:
    """Wakes every waiter on each ``notify``; replays of a background stream follow it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(slots=True, eq=False)
class KeptResponse:
    id: str
    deployment: str
    created_at: int
    expires_at: float
    params: dict[str, Any]  # request parameters that the response object reports back
    input_items: list[dict[str, Any]]
    own_turn: tuple[tuple[str, str], ...]  # (role, text) of this request's input
    history: tuple[tuple[str, str], ...]  # (role, text) of the chain before this request
    prefix_tokens: int  # tokens of that chain, which a real deployment serves from its cache
    input_tokens: int
    plan: ReplyPlan
    message_id: str
    reasoning_id: str
    store: bool
    background: bool
    status: str = "in_progress"
    delivered: int = 0  # text tokens generated so far
    delivered_chars: int = 0  # and their length in characters
    items_added: int = 0  # output items announced so far
    items_done: int = 0  # output items finished so far
    error: dict[str, Any] | None = None
    stream_error: dict[str, Any] | None = None  # an `error` event ended the stream
    incomplete_reason: str | None = None
    filtered_category: str | None = None
    completed_at: int | None = None
    expired: bool = False
    events: list[bytes] | None = None  # a background response keeps its stream for replays
    changed: Signal = field(default_factory=Signal)
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def text(self) -> str:
        return self.plan.text[: self.delivered_chars]

    @property
    def output_tokens(self) -> int:
        return self.delivered + self.plan.reasoning_tokens

    def context_for_next(self) -> tuple[tuple[str, str], ...]:
        """What a request continuing from this response sees: the chain, this input, this reply."""
        return (*self.history, *self.own_turn, ("assistant", self.text))

    def context_tokens_for_next(self) -> int:
        own = sum(count_tokens(text) for _, text in self.own_turn)
        return self.prefix_tokens + own + self.delivered

    def finish(
        self,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.incomplete_reason = incomplete_reason
        self.completed_at = int(time.time())
        self.changed.notify()

    def abandon(self) -> None:
        """The client left mid-stream: a response still generating ends incomplete."""
        if self.running:
            self.finish("incomplete")


class ResponseStore:
    """Stored responses by id, oldest first so that the oldest are evicted past the limit."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._responses: OrderedDict[str, KeptResponse] = OrderedDict()

    def add(self, response: KeptResponse) -> None:
        self._responses[response.id] = response
        while len(self._responses) > self._limit:
            self._responses.popitem(last=False)

    def find(self, response_id: str) -> KeptResponse | None:
        """The stored response, unless it never was, was deleted or has expired."""
        response = self._responses.get(response_id)
        if response is None:
            return None
        if response.expired or response.expires_at <= time.time():
            response.expired = True
            return None
        return response

    def remove(self, response_id: str) -> KeptResponse | None:
        response = self.find(response_id)
        if response is not None:
            del self._responses[response_id]
        return response

    def expire(self, response_id: str) -> bool:
        response = self.find(response_id)
        if response is None:
            return False
        response.expired = True
        return True

    def clear(self) -> None:
        self._responses.clear()
