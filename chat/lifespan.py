"""The ASGI lifespan: while serving, background replies of a process that is gone are taken
over; on shutdown, replies still streaming are saved with what they have (or, in background
mode, left for another process to resume).

Servers that speak the lifespan protocol (uvicorn) call it; Django's own handler does not.
"""

import asyncio
import contextlib
from typing import Any

from chat import llm, replies


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    sweep: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            sweep = asyncio.get_running_loop().create_task(replies.replies_sweep())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if sweep is not None:
                sweep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweep
            await replies.replies_shutdown()
            await llm.aclose_clients()
            await send({"type": "lifespan.shutdown.complete"})
            return
