"""The stored-response ledger: queueing deletions of the copies Azure keeps."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from chat.models import StoredResponse


def ledger_queue_deletions(
    *, rows: QuerySet[StoredResponse], requested_by: User | None = None
) -> int:
    """Mark live or failed rows as deleting and enqueue one deletion task per row."""
    from chat.tasks import delete_stored_response

    pks = list(
        rows.filter(state__in=(StoredResponse.State.LIVE, StoredResponse.State.FAILED)).values_list(
            "pk", flat=True
        )
    )
    if not pks:
        return 0
    StoredResponse.objects.filter(pk__in=pks).update(
        state=StoredResponse.State.DELETING,
        deleted_by=requested_by,
        next_attempt_at=timezone.now(),
        last_error="",
    )

    def enqueue() -> None:
        for pk in pks:
            delete_stored_response.enqueue(pk)

    transaction.on_commit(enqueue)
    return len(pks)
