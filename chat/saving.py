"""Saving a finished reply, and the lease that says a reply is still being written.

A save is one transaction with a constant number of queries, whatever the conversation's
length. It writes only a reply that is still the one in flight: a save never overwrites a
message that another turn has since taken over (a retry, or an orphan check that gave up on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat import llm
from chat.models import Conversation, Deployment, Message, StoredResponse
from chat.rendering import clean_model_text, render_markdown

# How many abandoned background replies one sweep takes over at most.
TAKE_OVER_BATCH = 20


class ConversationGone(Exception):
    """The conversation (and so the reply's message) was deleted while it was being written."""


class ReplySuperseded(Exception):
    """The message is no longer this reply's to write: retried, or given up as orphaned."""


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """How a reply ended, as the runner saw it: what is saved, and where its copy lives."""

    text: str
    status: str
    deployment: Deployment | None
    response_id: str = ""
    request_id: str = ""
    region: str = ""
    endpoint: str = ""
    usage: llm.Usage | None = None
    error: llm.LLMError | None = None
    context_rebuilt: bool = False
    first_token_ms: int | None = None
    duration_ms: int | None = None
    stored_remotely: bool = False
    becomes_head: bool = False
    reasoning_summary: str = ""
    # Sealed reasoning items (stateless deployments), sent back with the next rebuilt history.
    reasoning_items: tuple[dict[str, Any], ...] = ()


def reply_lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.CHAT_REPLY_LEASE_SECONDS)


def reply_lease_renew_every() -> float:
    """Seconds between renewals: a lease outlives two missed ones."""
    return float(settings.CHAT_REPLY_LEASE_SECONDS) / 3


def reply_renew_lease(*, message_id: int, resume: dict[str, Any] | None = None) -> bool:
    """Keep a reply in flight from being taken for abandoned; False once it is not in flight.

    ``resume``: a background reply's text so far with the point on Azure it was taken from
    (``resume_response_id``, ``resume_after``), written with the lease, not per delta."""
    now = timezone.now()
    renewed = Message.objects.filter(pk=message_id, status__in=Message.IN_FLIGHT).update(
        alive_until=reply_lease_until(now), **(resume or {})
    )
    return bool(renewed)


def reply_lease_give_up(*, message_id: int, resume: dict[str, Any]) -> bool:
    """The server stops: leave the background reply, with its resume point, for another
    process to take over at once."""
    given = Message.objects.filter(pk=message_id, status__in=Message.IN_FLIGHT).update(
        alive_until=timezone.now(), **resume
    )
    return bool(given)


def replies_take_over() -> list[Message]:
    """Background replies whose process is gone (their lease ran out, a resume point kept),
    each claimed by exactly one process: a conditional UPDATE renews the lease for the caller."""
    now = timezone.now()
    abandoned = Message.objects.filter(
        status__in=Message.IN_FLIGHT, alive_until__lte=now, resume_after__isnull=False
    ).exclude(resume_response_id="")
    taken = [
        pk
        for pk in abandoned.values_list("pk", flat=True)[:TAKE_OVER_BATCH]
        if abandoned.filter(pk=pk).update(alive_until=reply_lease_until(now))
    ]
    return list(
        Message.objects.filter(pk__in=taken).select_related(
            "conversation__owner", "conversation__deployment", "deployment", "reply_to"
        )
    )


@dataclass(frozen=True, slots=True)
class ReplyText:
    """A finished reply's text and thinking, cleaned, with their sanitized renders."""

    text: str
    html: str
    reasoning_summary: str
    reasoning_html: str


def reply_text(outcome: ReplyOutcome) -> ReplyText:
    """Render the reply for its save: CPU work, for the event loop rather than the database
    thread that every turn's queries share."""
    text = clean_model_text(outcome.text)
    summary = clean_model_text(outcome.reasoning_summary)
    return ReplyText(
        text,
        render_markdown(text) if text else "",
        summary,
        render_markdown(summary) if summary else "",
    )


def _message_fields(outcome: ReplyOutcome, rendered: ReplyText, now: datetime) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "text": rendered.text,
        "html": rendered.html,
        "reasoning_summary": rendered.reasoning_summary,
        "reasoning_html": rendered.reasoning_html,
        "reasoning_items": list(outcome.reasoning_items),
        "status": outcome.status,
        "deployment": outcome.deployment,
        "response_id": outcome.response_id,
        "request_id": outcome.request_id,
        "context_rebuilt": outcome.context_rebuilt,
        "first_token_ms": outcome.first_token_ms,
        "duration_ms": outcome.duration_ms,
        "completed_at": now,
        "alive_until": None,
        "resume_response_id": "",
        "resume_after": None,
        "error_code": outcome.error.kind.value if outcome.error is not None else "",
        "error": outcome.error.message if outcome.error is not None else "",
    }
    if outcome.usage is not None:
        fields |= {
            "input_tokens": outcome.usage.input_tokens,
            "output_tokens": outcome.usage.output_tokens,
            "reasoning_tokens": outcome.usage.reasoning_tokens,
            "cached_tokens": outcome.usage.cached_tokens,
        }
    return fields


def _head_update(outcome: ReplyOutcome, now: datetime) -> dict[str, Any]:
    update: dict[str, Any] = {"updated_at": now}
    if outcome.becomes_head and outcome.deployment is not None:
        update |= {
            "head_response_id": outcome.response_id,
            "head_deployment": outcome.deployment,
            "head_created_at": now,
        }
    elif outcome.context_rebuilt or outcome.status == Message.Status.COMPLETED:
        # A completed turn that is not stored (stateless) leaves no usable head.
        update |= {"head_response_id": "", "head_deployment": None}
    return update


def _keep_copy(
    message: Message, conversation: Conversation, outcome: ReplyOutcome, *, owner_active: bool
) -> None:
    """The copy's ledger row (normally written when Azure named it) now names its message."""
    from chat.ledger import ledger_queue_deletions, ledger_record

    assert outcome.deployment is not None
    ledger_record(
        deployment=outcome.deployment,
        response_id=outcome.response_id,
        endpoint=outcome.endpoint or outcome.deployment.endpoint,
        request_id=outcome.request_id,
        region=outcome.region,
        user_id=conversation.owner_id,
        conversation_id=conversation.pk,
        message_id=message.pk,
    )
    if not owner_active:
        # The owner was deactivated while this reply was written: its copy goes too.
        ledger_queue_deletions(
            rows=StoredResponse.objects.filter(
                deployment=outcome.deployment, response_id=outcome.response_id
            )
        )


def reply_finish(
    *,
    message: Message,
    conversation: Conversation,
    outcome: ReplyOutcome,
    rendered: ReplyText | None = None,
) -> Message:
    """Save the finished reply, move the conversation's head, and link Azure's copy.

    ``rendered``: ``reply_text(outcome)``, when the caller rendered it already.
    Raises ``ConversationGone`` or ``ReplySuperseded`` when there is nothing left to save into;
    a database error propagates, for the caller to try again."""
    now = timezone.now()
    fields = _message_fields(outcome, rendered or reply_text(outcome), now)
    with transaction.atomic():
        saved = Message.objects.filter(
            pk=message.pk, status__in=Message.IN_FLIGHT, created_at=message.created_at
        ).update(**fields)
        if not saved:
            if Message.objects.filter(pk=message.pk).exists():
                raise ReplySuperseded(message.pk)
            raise ConversationGone(conversation.pk)
        head = _head_update(outcome, now)
        # The owner's state rides on an update the save makes anyway: one query, not two.
        owner_active = Conversation.objects.filter(
            pk=conversation.pk, owner__is_active=True
        ).update(**head)
        if not owner_active:
            Conversation.objects.filter(pk=conversation.pk).update(**head)
        if outcome.stored_remotely and outcome.response_id and outcome.deployment is not None:
            _keep_copy(message, conversation, outcome, owner_active=bool(owner_active))
    for field, value in fields.items():
        setattr(message, field, value)
    # Tabs watching this reply keep the conversation as it now stands (its next request).
    for field, value in head.items():
        setattr(conversation, field, value)
    return message
