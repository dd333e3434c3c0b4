"""Admission: past what this process streams smoothly, a new reply waits its turn.

Every reply of a process streams through one event loop. Once the process is busier than it
can keep up with, one more stream makes every live stream later: at 200 short replies on one
core, every delta of every reply came seconds late. So a new reply starts at once only while
the process has room: its event loop keeps time (the lag of a timer that should fire every
``PROBE_SECONDS`` stays under ``CHAT_ADMISSION_LAG_MS``; 0 turns these checks off), neither
the loop's thread nor the whole process uses more than ``BUSY_SHARE`` of its CPU (of one core,
and of the cores it may run on), and it streams fewer than ``CHAT_MAX_STREAMS`` replies (0: no
fixed cap). A process pinned to one core saturates with the loop's thread well under a core,
the database thread taking the rest, which is why both shares count.

Otherwise it waits, first come first served, and its tab says so ("busy, starting soon") until
a stream ends or the process has room again. A few replies always start (``ALWAYS_ADMITTED``),
and none waits longer than ``MAX_WAIT_SECONDS``: a slow reply is better than none.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings

PROBE_SECONDS = 0.05
ALWAYS_ADMITTED = 2
MAX_WAIT_SECONDS = 30.0
BUSY_SHARE = 0.85
# Replies start a few per probe (and one for each that ends), so that the share can show what
# they cost before more start: up to a quarter more per probe under this share, a tenth more
# between it and BUSY_SHARE.
CALM_SHARE = 0.5
# A reply that waits less than this shows nothing: the line would only flicker.
NOTICE_AFTER_SECONDS = 0.3
# How fast a measured lag fades, and how much each probe moves the busy share: a busy moment
# holds new replies back for a few hundred milliseconds.
_LAG_DECAY = 0.8
_BUSY_WEIGHT = 0.3


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Admission:
    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.streaming = 0
        self.lag = 0.0  # seconds, the probe's recent maximum, decaying
        self.busy = 0.0  # the larger CPU share (loop thread, process), smoothed
        self._cores = _usable_cores()
        self._clocks = (0.0, 0.0, 0.0)  # wall, process CPU, loop thread CPU at the last probe
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._room = 8  # replies that may still start before the next probe
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0.0
        self._loop = loop

    def _step(self) -> int:
        if self.busy < CALM_SHARE:
            return max(8, self.streaming // 4)
        return max(2, self.streaming // 10)

    def _open(self) -> bool:
        cap = settings.CHAT_MAX_STREAMS
        if cap and self.streaming >= cap:
            return False
        if self.streaming < ALWAYS_ADMITTED:
            return True
        limit = settings.CHAT_ADMISSION_LAG_MS / 1000
        if not limit:
            return True
        return self.lag < limit and self.busy < BUSY_SHARE and self._room > 0

    def _start_one(self) -> None:
        self.streaming += 1
        self._room = max(0, self._room - 1)

    async def enter(self, *, waiting: Callable[[], None]) -> None:
        """Return once this reply may stream; ``waiting`` is called if it has waited
        NOTICE_AFTER_SECONDS. Every ``enter`` that returns is matched by one ``leave``."""
        self._watch_loop()
        if not self._waiting and self._open():
            self._start_one()
            return
        loop = asyncio.get_running_loop()
        notice = loop.call_later(NOTICE_AFTER_SECONDS, waiting)
        admitted = loop.create_future()
        self._waiting.append(admitted)
        try:
            async with asyncio.timeout(MAX_WAIT_SECONDS):
                await asyncio.shield(admitted)
        except TimeoutError:
            if not admitted.done():
                self._waiting.remove(admitted)
                self._start_one()
        except asyncio.CancelledError:
            if admitted.done():
                self.leave()  # admitted, then cancelled before it could stream
            else:
                self._waiting.remove(admitted)
                admitted.cancel()
            raise
        finally:
            notice.cancel()

    def leave(self) -> None:
        self.streaming = max(0, self.streaming - 1)  # 0: it entered on a loop since gone
        self._room = min(self._room + 1, self._step())  # its place, for the next in line
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self._open():
            self._start_one()
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
        self._clocks = (time.monotonic(), time.process_time(), time.thread_time())
        self._probe_due = self._clocks[0] + PROBE_SECONDS
        self._probe = loop.call_later(PROBE_SECONDS, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        # Runs on the loop's thread, so thread_time is that thread's CPU.
        wall, process, thread = time.monotonic(), time.process_time(), time.thread_time()
        self.lag = max(max(0.0, wall - self._probe_due), self.lag * _LAG_DECAY)
        elapsed = wall - self._clocks[0]
        if elapsed > 0:
            share = max(
                (process - self._clocks[1]) / elapsed / self._cores,
                (thread - self._clocks[2]) / elapsed,
            )
            self.busy += _BUSY_WEIGHT * (share - self.busy)
        self._room = self._step()
        self._admit()
        if self.streaming or self._waiting:
            self._schedule(loop)
        else:
            self._probe = None
            self.lag = self.busy = 0.0


admission = Admission()
