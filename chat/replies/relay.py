"""The relay: a reply's text to the tabs of this process that watch it.

Text is shown as markdown while it streams (``LiveMarkdown``). A delta goes out at once: the
flush runs as soon as the event loop gets to it, so deltas that arrive together (one read of the
stream, or while the process is busy) share a frame, and at low load there is no wait at all.
Each watching socket has its own queue, drained by its own task: the reply only appends to the
queues, so no tab, however slow, holds the reply or the other tabs back, and frames that queued
while a socket was sending go out together in its next message. A tab that falls behind (more than
``CHAT_WATCHER_MAX_BYTES`` queued, or its oldest frame waiting ``CHAT_WATCHER_MAX_LAG``
seconds) is dropped and told to reconnect, which catches it up from the reply so far; memory
stays bounded whatever a socket does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from django.conf import settings

from chat import fragments
from chat.rendering import LiveMarkdown, clean_model_text

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]
FellBehind = Callable[[], Awaitable[None]]

# Watchers' drain tasks, referenced until they end (asyncio keeps only weak references).
_draining: set[asyncio.Future[None]] = set()


def _split_trailing_high_surrogate(text: str) -> tuple[str, str]:
    """Hold back half of a surrogate pair split across deltas until its other half arrives."""
    if text and "\ud800" <= text[-1] <= "\udbff":
        return text[:-1], text[-1]
    return text, ""


class Watcher:
    """One socket's queue of frames, and the task that sends them in order."""

    def __init__(self, send: Send, fell_behind: FellBehind | None) -> None:
        self.send = send
        self._fell_behind = fell_behind
        self._frames: deque[tuple[float, str, bool]] = deque()
        self._queued_bytes = 0
        self._sending_bytes = 0
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="watcher")
        _draining.add(self._task)
        self._task.add_done_callback(_draining.discard)

    def put(self, fragment: str, *, last: bool = False) -> bool:
        """Queue a frame; False when this socket has fallen too far behind to keep."""
        now = time.monotonic()
        self._frames.append((now, fragment, last))
        self._queued_bytes += len(fragment)
        self._wake.set()
        # What is being sent is on its way; what waits behind it is the backlog (an idle
        # socket sends all it has at once: it has none).
        oldest_at = self._frames[0][0]
        backlog = self._queued_bytes - self._sending_bytes if self._sending_bytes else 0
        return not (
            backlog > settings.CHAT_WATCHER_MAX_BYTES
            or now - oldest_at > settings.CHAT_WATCHER_MAX_LAG
        )

    def drop(self, *, tell: bool) -> None:
        """Stop sending; with ``tell``, the socket is closed so that its page reconnects."""
        self._task.cancel()
        self._frames.clear()
        self._queued_bytes = self._sending_bytes = 0
        if tell and self._fell_behind is not None:
            task = asyncio.ensure_future(self._fell_behind())
            _draining.add(task)
            task.add_done_callback(_draining.discard)

    async def _drain(self) -> None:
        while True:
            while self._frames:
                # Everything queued goes in one message: a socket that is behind catches up in
                # one send rather than one per frame (htmx applies each out-of-band part).
                count = len(self._frames)
                message = "".join(fragment for _, fragment, _ in self._frames)
                last = any(is_last for _, _, is_last in self._frames)
                self._sending_bytes = len(message)
                try:
                    if message:
                        await self.send(message)
                except Exception:
                    return  # the socket went away; its consumer unwatches on disconnect
                for _ in range(count):
                    self._frames.popleft()
                self._queued_bytes -= len(message)
                self._sending_bytes = 0
                if last:
                    return
            self._wake.clear()
            await self._wake.wait()


class _Part:
    """One streamed part of a reply (its text, or its thinking): what arrived, what waits for
    the next frame, and the live render its watchers see."""

    def __init__(self, message_id: int, part: str = "") -> None:
        self.message_id = message_id
        self.part = part
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.sent_any = False
        self.live = LiveMarkdown(message_id, part=part)
        self._held_surrogate = ""

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pending.append(text)

    def flush(self) -> str:
        """The frame for what arrived since the last one; "" when nothing shows yet."""
        if not self.pending:
            return ""
        chunk, self._held_surrogate = _split_trailing_high_surrogate(
            self._held_surrogate + "".join(self.pending)
        )
        chunk = clean_model_text(chunk)
        self.pending.clear()
        if not chunk:
            return ""
        self.sent_any = True
        shown = self.live.add(chunk)
        if isinstance(shown, str):
            return fragments.stream_append(self.message_id, shown, part=self.part)
        return fragments.stream_render(self.message_id, *shown, part=self.part)


class Relay:
    """A reply's text, and a reasoning model's thinking above it: the "Thinking" section opens
    with the first of the summary and folds away when the answer's text begins."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self._answer = _Part(message_id)
        self._thinking = _Part(message_id, "thinking")
        self._holds = 0
        self._watchers: dict[Send, Watcher] = {}
        self._flush_soon: asyncio.Handle | None = None
        self._announced: str | None = None
        self.final: str | None = None
        # Called after each flush that sent text (the bridge publishes progress from it).
        self.flushed: Callable[[], None] | None = None

    @property
    def parts(self) -> list[str]:
        """The answer's text as it arrived."""
        return self._answer.parts

    @property
    def began(self) -> bool:
        """Whether anything of the reply arrived, its thinking or its text."""
        return bool(self._answer.parts or self._thinking.parts)

    def text(self) -> str:
        return "".join(self._answer.parts)

    def thinking(self) -> str:
        return "".join(self._thinking.parts)

    def shown(self) -> str:
        """The reply as a tab that starts watching it in another process (through the bridge)
        is shown it: the text so far, whole, and what the reply announces (it waits to start)."""
        return self._so_far() + (self._announced or "")

    def _so_far(self) -> str:
        frame = fragments.stream_replace(self.message_id, *self._answer.live.snapshot())
        if self._thinking.sent_any:
            live = not self._answer.sent_any
            frame = self._thinking_frame(live=live) + frame
        return frame

    def _thinking_frame(self, *, live: bool) -> str:
        return fragments.thinking(self.message_id, *self._thinking.live.snapshot(), live=live)

    # Watchers

    def watch(self, send: Send, *, fell_behind: FellBehind | None = None) -> None:
        """Send this reply to ``send`` from now on: first the text so far (or the final frame,
        if the reply has finished), then every frame after it, in order."""
        if send in self._watchers:
            return
        watcher = Watcher(send, fell_behind)
        if self.final is not None:
            watcher.put(self.final, last=True)
            return
        self._watchers[send] = watcher
        if self._answer.sent_any or self._thinking.sent_any:
            watcher.put(self._so_far())
        if self._announced is not None:
            watcher.put(self._announced)

    def unwatch(self, send: Send) -> None:
        watcher = self._watchers.pop(send, None)
        if watcher is not None:
            watcher.drop(tell=False)

    def watching(self, send: Send) -> bool:
        return send in self._watchers

    def _broadcast(self, fragment: str, *, last: bool = False) -> None:
        for send, watcher in list(self._watchers.items()):
            if not watcher.put(fragment, last=last):
                logger.info("message %s: a tab fell behind; it will catch up", self.message_id)
                del self._watchers[send]
                watcher.drop(tell=True)

    def announce(self, fragment: str, *, lasting: bool) -> None:
        """A frame about the reply rather than of it (it waits to start, or starts now), in
        order with its text; ``lasting``: also to every tab that starts watching until the next
        announcement."""
        self._announced = fragment if lasting else None
        self._broadcast(fragment)

    # Text

    def hold(self) -> None:
        """Show no text until ``release``: while Azure's copy is not yet in the ledger."""
        self._holds += 1

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        pending = self._answer.pending or self._thinking.pending
        if not self._holds and pending and self._flush_soon is None:
            self._flush()

    def add(self, text: str) -> None:
        self._answer.add(text)
        self._arrived()

    def add_thinking(self, text: str) -> None:
        self._thinking.add(text)
        self._arrived()

    def _arrived(self) -> None:
        if self._holds or self._flush_soon is not None:
            return
        self._flush_soon = asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_soon = None
        if not self._holds:
            self._flush()

    def _flush(self) -> None:
        thinking_began = self._thinking.sent_any
        frame = self._thinking.flush()
        if frame and not thinking_began:
            frame = self._thinking_frame(live=True)
        answer_began = self._answer.sent_any
        answer = self._answer.flush()
        if answer and not answer_began and self._thinking.sent_any:
            # The answer begins: the thinking folds away, whole, before its first text.
            frame = self._thinking_frame(live=False)
        frame += answer
        if not frame:
            return
        self._broadcast(frame)
        if self.flushed is not None:
            self.flushed()

    def finish(self, final: str) -> None:
        """The last frame, to every watcher now and to any that attaches later."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        self.final = final
        self._broadcast(final, last=True)
        self._watchers.clear()
