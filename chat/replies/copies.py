"""Every copy Azure keeps of one reply's requests, in the ledger the moment Azure names it.

A turn may make several: the gateway's retry after ``response.created``, a failover member, a
rebuilt request after ``previous_response_not_found``, an early request. Each id gets its row
before any text is shown (the relay is held until then), so a process killed mid-stream still
leaves rows for the retention sweep. After the save, the copies no saved message keeps are
queued for deletion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.db import DatabaseError, IntegrityError

from chat import llm
from chat.ledger import ledger_delete_orphan, ledger_record
from chat.models import Deployment
from chat.replies.relay import Relay

logger = logging.getLogger(__name__)

_RETRY_MAX = 5.0


@dataclass(frozen=True, slots=True)
class Copy:
    deployment: Deployment
    endpoint: str
    started: llm.Started

    def ledger_fields(self) -> dict[str, object]:
        return {
            "deployment": self.deployment,
            "response_id": self.started.response_id,
            "endpoint": self.endpoint,
            "request_id": self.started.request_id,
            "region": self.started.region,
        }


async def _retrying(what: str, call: Callable[..., None], **arguments: object) -> None:
    """Run a ledger write on the database thread until it succeeds (or is cancelled)."""
    delay = 0.05
    while True:
        try:
            await database_sync_to_async(call)(**arguments)
            return
        except IntegrityError:
            if "conversation_id" not in arguments or arguments["conversation_id"] is None:
                raise
            # The conversation or user went away meanwhile: the row is kept without them.
            arguments = {**arguments, "conversation_id": None, "user_id": None}
        except DatabaseError:
            logger.warning("ledger: could not %s yet; retrying in %.2fs", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)


class Copies:
    def __init__(self, *, relay: Relay, user_id: int, conversation_id: int) -> None:
        self._relay = relay
        self._user_id = user_id
        self._conversation_id = conversation_id
        self.named: list[Copy] = []
        self._writing: set[asyncio.Task[None]] = set()

    def named_by(self, deployment: Deployment, started: llm.Started) -> None:
        """Azure named a stored response: record it, and show no text until it is recorded."""
        if not started.response_id:
            return
        copy = Copy(deployment, deployment.endpoint, started)
        self.named.append(copy)
        self._relay.hold()
        task = asyncio.get_running_loop().create_task(self._record(copy))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _record(self, copy: Copy) -> None:
        try:
            await _retrying(
                "record a copy",
                ledger_record,
                **copy.ledger_fields(),
                user_id=self._user_id,
                conversation_id=self._conversation_id,
            )
        finally:
            self._relay.release()

    async def recorded(self) -> None:
        """Wait for the rows being written (the save writes the kept copy's row itself)."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    async def forget_all_but(self, kept: str | None) -> None:
        """Queue the deletion of every copy but ``kept`` (the saved message's response)."""
        for copy in self.named:
            if copy.started.response_id == kept:
                continue
            await _retrying("queue a copy's deletion", ledger_delete_orphan, **copy.ledger_fields())
