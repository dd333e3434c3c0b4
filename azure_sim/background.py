"""Background mode: a response created with ``background=true`` generates in a task of its own,
outliving the request that made it, until it ends or is cancelled."""

import asyncio
import time

from azure_sim.asgi_http import HTTPError
from azure_sim.options import Options
from azure_sim.store import KeptResponse
from azure_sim.streams import Wait, response_events


class Generations:
    """The background generations still running, so that shutdown and reset can end them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, response: KeptResponse, options: Options) -> None:
        response.events = []
        task = asyncio.create_task(_generate(response, options))
        response.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def _generate(response: KeptResponse, options: Options) -> None:
    """Run the response's stream to its end, keeping its events for replays."""
    events = response.events
    assert events is not None
    try:
        for step in response_events(response, options, start=time.monotonic()):
            if isinstance(step, bytes):
                events.append(step)
                continue
            response.changed.notify()
            if isinstance(step, Wait):
                await asyncio.sleep(max(0.0, step.until - time.monotonic()))
            else:
                # A stalled or cut generation never finishes; only cancel or delete end it.
                await asyncio.Event().wait()
    finally:
        response.changed.notify()


def cancel(response: KeptResponse) -> KeptResponse:
    """The cancel operation: a background response still running ends ``cancelled``."""
    if not response.background:
        raise HTTPError(
            400,
            "invalid_value",
            "Only responses created with background=true can be cancelled.",
        )
    stop_generating(response)
    return response


def stop_generating(response: KeptResponse) -> None:
    """End a response still being generated (its background task with it) as ``cancelled``:
    on cancel, and on delete."""
    if response.task is not None:
        response.task.cancel()
    if response.running:
        response.finish("cancelled")
