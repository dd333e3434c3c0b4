"""The stored-response ledger: every copy Azure keeps, and its deletion until it is verifiably gone.

A row is ``live`` until its deletion is queued (``deleting``); it ends ``deleted`` once Azure
answers 404 for it, ``failed`` when the deletion gave up (an admin may queue it again), or
``expired`` when Azure's own 30 days passed first.

Deletions run as ``django.tasks`` tasks, one per row. A task first claims its row with a
conditional UPDATE that takes a lease (``lease_expires_at``): of two workers given the same row
only one gets it, and a killed worker's row becomes claimable again when the lease runs out
(``ledger_requeue_stuck``, run by the retention sweep, queues it again). Every later write is
fenced by that lease, so a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import batched

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from chat import llm
from chat.deployment_models import MAX_REMOTE_RETENTION_HOURS
from chat.models import Conversation, Deployment, StoredResponse
from chat.row_insert import Upsert, row_insert

logger = logging.getLogger(__name__)

State = StoredResponse.State
# Rows whose copy may still be on Azure.
ON_AZURE = (State.LIVE, State.DELETING, State.FAILED)
_QUEUEABLE = (State.LIVE, State.FAILED)
_RETRYABLE = frozenset(
    {llm.ErrorKind.RATE_LIMITED, llm.ErrorKind.UNAVAILABLE, llm.ErrorKind.TIMEOUT}
)
# Rows are queued in chunks so that no statement outgrows SQLite's limit on parameters.
_CHUNK = 500
# A copy recorded twice keeps its first row; the save that names its message fills it in.
_KEEP = Upsert(unique=("deployment", "response_id"))
_KEEP_NAMING = Upsert(
    unique=("deployment", "response_id"), update=("message", "conversation", "user")
)


def ledger_queue_deletions(
    *, rows: QuerySet[StoredResponse], requested_by: User | None = None
) -> int:
    """Queue the deletion of the live or failed ``rows``; returns how many were queued.

    A conversation whose head is among them stops continuing from it at once: its next turn
    sends the history from this app's copy. Rows already deleting or finished are left alone,
    so calling this twice queues nothing twice.
    """
    from chat.tasks import delete_stored_response

    now = timezone.now()
    with transaction.atomic():
        # Locked and re-checked here so that two concurrent callers (a cron sweep and an
        # admin action) split the rows instead of queueing each twice.
        picked = list(
            StoredResponse.objects.filter(pk__in=rows.values("pk"), state__in=_QUEUEABLE)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", "conversation_id", "response_id")
        )
        for chunk in batched(picked, _CHUNK, strict=False):
            pks = [pk for pk, _, _ in chunk]
            StoredResponse.objects.filter(pk__in=pks).update(
                state=State.DELETING,
                deleted_by=requested_by,
                attempts=0,
                last_error="",
                next_attempt_at=now,
                lease_expires_at=None,
            )
            Conversation.objects.filter(
                pk__in={conversation for _, conversation, _ in chunk if conversation},
                head_response_id__in=[response_id for _, _, response_id in chunk],
            ).update(head_response_id="", head_deployment=None, head_created_at=None)
            # Enqueued inside the transaction: with the database task backend the tasks commit
            # together with the state change, so no row can be left deleting without a task.
            for pk in pks:
                delete_stored_response.enqueue(pk)
    return len(picked)


def ledger_record(
    *,
    deployment: Deployment,
    response_id: str,
    endpoint: str,
    request_id: str = "",
    region: str = "",
    user_id: int | None = None,
    conversation_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Write a copy's row the moment Azure names it, before any of its text is shown.

    Idempotent, in one statement: a row already written for this response is kept, and given
    its ``message`` when one is named (the saved reply that keeps the copy)."""
    now = timezone.now()
    row = StoredResponse(
        response_id=response_id,
        deployment=deployment,
        endpoint=endpoint,
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        created_at=now,
        remote_expires_at=now + deployment.remote_retention,
        request_id=request_id,
        region=region,
    )
    row_insert(row, upsert=_KEEP_NAMING if message_id is not None else _KEEP)


def ledger_delete_orphan(
    *,
    deployment: Deployment,
    response_id: str,
    endpoint: str = "",
    request_id: str = "",
    region: str = "",
) -> None:
    """Record (if need be) and queue the deletion of a copy no message will keep: a retried or
    failed-over attempt, an unused early request, a reply whose conversation is gone."""
    with transaction.atomic():
        ledger_record(
            deployment=deployment,
            response_id=response_id,
            endpoint=endpoint or deployment.endpoint,
            request_id=request_id,
            region=region,
        )
        ledger_queue_deletions(
            rows=StoredResponse.objects.filter(deployment=deployment, response_id=response_id)
        )


def _backoff(attempt: int, retry_after: float | None) -> float:
    wait = min(settings.LEDGER_BACKOFF_BASE * 2.0 ** (attempt - 1), settings.LEDGER_BACKOFF_MAX)
    return max(wait, retry_after or 0.0)


def _claim(row_id: int) -> StoredResponse | None:
    """Take the row's lease if it is due and nobody holds it; None otherwise."""
    now = timezone.now()
    claimed = StoredResponse.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=row_id,
        state=State.DELETING,
    ).update(
        lease_expires_at=now + timedelta(seconds=settings.LEDGER_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return StoredResponse.objects.select_related("deployment").get(pk=row_id)


def _held(row: StoredResponse) -> QuerySet[StoredResponse]:
    """The row, as long as this worker's lease on it is still the current one."""
    return StoredResponse.objects.filter(
        pk=row.pk, state=State.DELETING, lease_expires_at=row.lease_expires_at
    )


def _resource_of(row: StoredResponse) -> Deployment:
    """The deployment as it was when the copy was made: a re-pointed deployment's old copies
    are deleted, and their 404 confirmed, on the resource that holds them."""
    deployment = row.deployment
    if not row.endpoint or row.endpoint == deployment.endpoint:
        return deployment
    then = copy.copy(deployment)
    then.pk = None  # not the cached client of the deployment's current resource
    then.endpoint = row.endpoint
    return then


async def _delete_and_confirm(deployment: Deployment, response_id: str) -> bool:
    """Delete the copy, then ask for it again: True only when Azure answers 404."""
    try:
        # Bounded well inside the lease, so no other worker can claim the row meanwhile.
        async with asyncio.timeout(settings.LEDGER_LEASE_SECONDS / 2):
            await llm.delete_response(deployment, response_id)
            return await llm.retrieve_response(deployment, response_id) is None
    except TimeoutError as exc:
        raise llm.LLMRequestError(
            llm.LLMError(llm.ErrorKind.TIMEOUT, "The deletion took too long.", detail="timeout")
        ) from exc
    finally:
        # Each task runs on an event loop of its own that ends with it; its clients go too.
        await llm.aclose_clients()


def _record_failure(row: StoredResponse, error: llm.LLMError, *, retryable: bool) -> str:
    from chat.tasks import delete_stored_response

    reason = f"{error.kind}: {error.detail or error.message}"
    if not retryable or row.attempts >= settings.LEDGER_MAX_ATTEMPTS:
        given_up = f"Gave up after {row.attempts} attempt(s). Last error: {reason}"
        _held(row).update(
            state=State.FAILED, last_error=given_up, lease_expires_at=None, next_attempt_at=None
        )
        logger.warning("remote deletion of ledger row %s failed: %s", row.pk, reason)
        return "failed"
    when = timezone.now() + timedelta(seconds=_backoff(row.attempts, error.retry_after))
    with transaction.atomic():
        kept = _held(row).update(
            last_error=f"Attempt {row.attempts} failed ({reason}); trying again.",
            lease_expires_at=None,
            next_attempt_at=when,
        )
        if kept:
            delete_stored_response.using(run_after=when).enqueue(row.pk)
    return "retrying"


def ledger_delete_remote(*, row_id: int) -> str:
    """One attempt at deleting a row's copy on Azure (the deletion task's body).

    Returns what happened: ``deleted``, ``retrying``, ``failed`` or ``skipped`` (the row is not
    due, is held by another worker, or is no longer being deleted).
    """
    row = _claim(row_id)
    if row is None:
        return "skipped"
    try:
        gone = async_to_sync(_delete_and_confirm)(_resource_of(row), row.response_id)
    except llm.LLMRequestError as exc:
        return _record_failure(row, exc.error, retryable=exc.error.kind in _RETRYABLE)
    if not gone:
        still_there = llm.LLMError(
            llm.ErrorKind.UNAVAILABLE, "Azure still holds the response after deleting it."
        )
        return _record_failure(row, still_there, retryable=True)
    _held(row).update(
        state=State.DELETED,
        deleted_at=timezone.now(),
        last_error="",
        lease_expires_at=None,
        next_attempt_at=None,
    )
    return "deleted"


def ledger_requeue_stuck(*, now: datetime | None = None) -> int:
    """Queue again the deletions whose worker stopped (lease run out) or whose task was lost.

    A row that has already used all its attempts this way is marked failed instead, so a row
    that stops its worker every time cannot loop for ever.
    """
    from chat.tasks import delete_stored_response

    now = now or timezone.now()
    lost = timedelta(seconds=settings.LEDGER_LEASE_SECONDS)
    stuck = StoredResponse.objects.filter(state=State.DELETING).filter(
        Q(lease_expires_at__lte=now)
        | Q(lease_expires_at__isnull=True, next_attempt_at__lte=now - lost)
    )
    with transaction.atomic():
        exhausted = stuck.filter(attempts__gte=settings.LEDGER_MAX_ATTEMPTS).update(
            state=State.FAILED,
            lease_expires_at=None,
            next_attempt_at=None,
            last_error=f"Gave up after {settings.LEDGER_MAX_ATTEMPTS} attempts: the worker "
            "stopped while deleting it.",
        )
        pks = list(
            stuck.order_by("pk").select_for_update(skip_locked=True).values_list("pk", flat=True)
        )
        for chunk in batched(pks, _CHUNK, strict=False):
            StoredResponse.objects.filter(pk__in=chunk).update(
                lease_expires_at=None, next_attempt_at=now
            )
            for pk in chunk:
                delete_stored_response.enqueue(pk)
    if exhausted:
        logger.warning("%d ledger rows failed: their worker stopped every time", exhausted)
    return len(pks)


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    queued: int
    requeued: int


def ledger_retention_sweep(*, now: datetime | None = None) -> SweepResult:
    """Apply each deployment's remote retention; safe to run at any time, and concurrently.

    Copies older than their deployment's retention are queued for deletion (the local
    conversation stays); copies past Azure's own 30 days are only marked expired, since Azure
    has removed them already. Deletions whose worker stopped are queued again.
    """
    now = now or timezone.now()
    expired = StoredResponse.objects.filter(
        state__in=_QUEUEABLE,
        created_at__lte=now - timedelta(hours=MAX_REMOTE_RETENTION_HOURS),
    ).update(state=State.EXPIRED, next_attempt_at=None, lease_expires_at=None)
    queued = 0
    for deployment in Deployment.objects.filter(
        remote_retention_hours__lt=MAX_REMOTE_RETENTION_HOURS
    ):
        queued += ledger_queue_deletions(
            rows=StoredResponse.objects.filter(
                deployment=deployment,
                state=State.LIVE,
                created_at__lte=now - deployment.remote_retention,
            )
        )
    return SweepResult(expired=expired, queued=queued, requeued=ledger_requeue_stuck(now=now))


def ledger_outstanding(*, deployments: list[Deployment]) -> dict[int, int]:
    """How many copies each deployment may still have on Azure (deployments with none left out)."""
    counts = (
        StoredResponse.objects.filter(deployment__in=deployments, state__in=ON_AZURE)
        .values("deployment")
        .annotate(count=Count("pk"))
        .values_list("deployment", "count")
    )
    return dict(counts)


def ledger_retention_changed(*, deployment: Deployment) -> int:
    """Move the remote expiry of the deployment's live rows to its new retention."""
    return StoredResponse.objects.filter(deployment=deployment, state=State.LIVE).update(
        remote_expires_at=F("created_at") + deployment.remote_retention
    )
