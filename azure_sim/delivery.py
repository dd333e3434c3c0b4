"""How a response reaches its client: after the wait for the resource to accept the request, a
live event stream, one JSON body once it is done, or a replay of a background response that
follows its live events; and a line that stalls or drops. Each notices the client leaving."""

import asyncio
import time

from azure_sim.asgi_http import DisconnectWatcher, Receive, Reply
from azure_sim.objects import response_object
from azure_sim.options import Fault, Options
from azure_sim.store import KeptResponse
from azure_sim.streams import DROP, HOLD, Step, Wait, response_events

_TEXT_DELTA_EVENT = b"event: response.output_text.delta\n"
# Events sent in one write when nothing asks to pause between them.
_BATCH = 64


async def accepted(receive: Receive, accept_ms: int) -> bool:
    """Wait ``accept_ms`` before answering anything, as a busy resource takes time to accept a
    request; False when the client left meanwhile."""
    if accept_ms <= 0:
        return True
    watcher = DisconnectWatcher(receive)
    try:
        await asyncio.wait_for(watcher.gone.wait(), accept_ms / 1000)
    except TimeoutError:
        return True
    finally:
        watcher.stop()
    return False


async def stream(reply: Reply, response: KeptResponse, options: Options, receive: Receive) -> None:
    """Generate ``response`` while sending its events; a client that leaves abandons it."""
    watcher = DisconnectWatcher(receive)
    await reply.start_stream()
    pending: list[bytes] = []
    try:
        for step in response_events(response, options, start=time.monotonic()):
            if isinstance(step, bytes):
                pending.append(step)
                if len(pending) >= _BATCH:
                    await reply.chunk(b"".join(pending))
                    pending.clear()
                continue
            if isinstance(step, Wait):
                delay = step.until - time.monotonic()
                if delay <= 0:
                    # Running late: catch up in one write rather than one write per event.
                    continue
            if pending:
                await reply.chunk(b"".join(pending))
                pending.clear()
            if not await _pause(step, watcher):
                # Returning without ending the body makes the server drop the connection.
                response.abandon()
                return
        await reply.end(b"".join(pending))
    finally:
        watcher.stop()


async def _pause(step: Step, watcher: DisconnectWatcher) -> bool:
    """Carry out a pause; False when the stream must end here (stall, cut or client gone)."""
    if isinstance(step, Wait):
        delay = step.until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return not watcher.gone.is_set()
    if step is HOLD:
        await watcher.gone.wait()
    return False


async def respond_when_done(
    reply: Reply, response: KeptResponse, options: Options, receive: Receive
) -> None:
    """Generate ``response``, then answer with it as JSON; a client that leaves abandons it."""
    watcher = DisconnectWatcher(receive)
    try:
        for step in response_events(response, options, start=time.monotonic()):
            if isinstance(step, bytes):
                continue
            if step is DROP:
                await reply.start_truncated()
            if not await _pause(step, watcher):
                response.abandon()
                return
    finally:
        watcher.stop()
    if response.stream_error is not None:
        await reply.json(500, {"error": response.stream_error})
    else:
        await reply.json(200, response_object(response))


async def hold_or_drop(reply: Reply, options: Options, receive: Receive) -> None:
    """A stalled line stays open and idle until the client leaves; a cut one is dropped."""
    if options.fault is Fault.CUT:
        await reply.start_truncated()
        return
    watcher = DisconnectWatcher(receive)
    await watcher.gone.wait()


async def replay(
    reply: Reply,
    response: KeptResponse,
    starting_after: int,
    receive: Receive,
    *,
    line_fault: Options | None = None,
) -> None:
    """Send the stored events after ``starting_after``, then follow the live ones.

    With ``line_fault`` (a stall or a cut), the line fails after ``after`` text deltas
    while the response goes on generating, as a background response does on Azure."""
    events = response.events
    assert events is not None
    watcher = DisconnectWatcher(receive, on_gone=response.changed.notify)
    await reply.start_stream()
    position = max(0, starting_after + 1)
    deltas_left = line_fault.after if line_fault is not None else -1
    try:
        while not watcher.gone.is_set():
            if position < len(events) and line_fault is not None:
                deltas_left -= events[position].startswith(_TEXT_DELTA_EVENT)
                if deltas_left < 0:
                    if line_fault.fault is Fault.STALL:
                        await watcher.gone.wait()
                    return  # without ending the body: the server drops the connection
                await reply.chunk(events[position])
                position += 1
                continue
            if position < len(events):
                await reply.chunk(b"".join(events[position:]))
                position = len(events)
            if not response.running:
                await reply.end()
                return
            await response.changed.wait()
    finally:
        watcher.stop()
