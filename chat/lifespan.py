"""The ASGI lifespan: on shutdown, replies still streaming are saved with what they have.

Servers that speak the lifespan protocol (uvicorn) call it; Django's own handler does not.
"""

from typing import Any

from chat import llm, replies


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await replies.replies_shutdown()
            await llm.aclose_clients()
            await send({"type": "lifespan.shutdown.complete"})
            return
