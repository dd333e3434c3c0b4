"""Admission: past what this process streams smoothly, a new reply waits its turn.

Every reply of a process streams through one event loop. Once the loop is busier than it can
keep up with, one more stream makes every live stream later: at 200 short replies on one core,
every delta of every reply came seconds late. So a new reply starts at once only while the
loop keeps time (its lag, measured by a timer that should fire every ``PROBE_SECONDS``, stays
under ``CHAT_ADMISSION_LAG_MS``) and the process streams fewer than ``CHAT_MAX_STREAMS``
replies (0: no fixed cap). Otherwise it waits, first come first served, and its tab says so
("busy, starting soon") until a stream ends or the loop catches up. A few replies always start
(``ALWAYS_ADMITTED``), and none waits longer than ``MAX_WAIT_SECONDS``: a slow reply is
better than none.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings

PROBE_SECONDS = 0.05
ALWAYS_ADMITTED = 2
MAX_WAIT_SECONDS = 30.0
# How fast a measured lag fades: a busy moment holds new replies back for about half a second.
_LAG_DECAY = 0.8


class Admission:
    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.streaming = 0
        self.lag = 0.0  # seconds, the probe's recent maximum, decaying
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0.0
        self._loop = loop

    def _open(self) -> bool:
        cap = settings.CHAT_MAX_STREAMS
        if cap and self.streaming >= cap:
            return False
        if self.streaming < ALWAYS_ADMITTED:
            return True
        limit = settings.CHAT_ADMISSION_LAG_MS / 1000
        return not limit or self.lag < limit

    async def enter(self, *, waiting: Callable[[], None]) -> None:
        """Return once this reply may stream; ``waiting`` is called first if it must wait.
        Every ``enter`` that returns is matched by one ``leave``."""
        self._watch_loop()
        if not self._waiting and self._open():
            self.streaming += 1
            return
        waiting()
        admitted = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        try:
            async with asyncio.timeout(MAX_WAIT_SECONDS):
                await asyncio.shield(admitted)
        except TimeoutError:
            if not admitted.done():
                self._waiting.remove(admitted)
                self.streaming += 1
        except asyncio.CancelledError:
            if admitted.done():
                self.leave()  # admitted, then cancelled before it could stream
            else:
                self._waiting.remove(admitted)
                admitted.cancel()
            raise

    def leave(self) -> None:
        self.streaming -= 1
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self._open():
            self.streaming += 1
            self._waiting.popleft().set_result(None)

    # The lag probe runs while any reply streams or waits.

    def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new loop (a new server, or a new test): nothing of the last one still streams.
            self._reset(loop)
        if self._probe is None:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._probe_due = time.monotonic() + PROBE_SECONDS
        self._probe = loop.call_later(PROBE_SECONDS, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        late = max(0.0, time.monotonic() - self._probe_due)
        self.lag = max(late, self.lag * _LAG_DECAY)
        self._admit()
        if self.streaming or self._waiting:
            self._schedule(loop)
        else:
            self._probe = None
            self.lag = 0.0


admission = Admission()
