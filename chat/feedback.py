"""Feedback on replies: a person rates one, and administrators read the ratings.

What administrators get is counted and charted per deployment and model; the words of a
conversation reach them only where its owner ticked "share this conversation".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from chat.charts import Chart, stacked_chart
from chat.models import Conversation, Feedback, Message

CHART_DAYS = 30


class FeedbackRefused(Exception):
    """Feedback on something that cannot take it (a question, a reply still being written)."""


def feedback_give(
    *, user: User, message: Message, rating: str, comment: str = "", share: bool = False
) -> Feedback:
    """Record ``user``'s rating of the reply; giving it again changes the earlier one."""
    if message.role != Message.Role.ASSISTANT or message.in_flight:
        raise FeedbackRefused(gettext("Only a finished reply can be rated."))
    now = timezone.now()
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        user=user,
        defaults={
            "rating": rating,
            "comment": comment.strip(),
            "share_conversation": share,
            "updated_at": now,
        },
        create_defaults={
            "rating": rating,
            "comment": comment.strip(),
            "share_conversation": share,
            "created_at": now,
            "updated_at": now,
        },
    )
    return feedback


def feedback_attach(messages: Iterable[Message], *, user_id: int) -> None:
    """Set ``my_feedback`` on each message (None when not rated), in one query."""
    messages = list(messages)
    given = {
        f.message_id: f
        for f in Feedback.objects.filter(user_id=user_id, message__in=[m.pk for m in messages])
    }
    for message in messages:
        message.my_feedback = given.get(message.pk)  # type: ignore[attr-defined]


def shared_conversation(feedback: Feedback) -> Conversation | None:
    """The conversation an administrator may read through ``feedback``: only a shared one."""
    if not feedback.share_conversation:
        return None
    return feedback.message.conversation


@dataclass(frozen=True, slots=True)
class Ratings:
    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        return self.up + self.down


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    deployments: list[tuple[str, str, Ratings]]  # (deployment, model, ratings), most rated first
    chart: Chart[Ratings]
    start: date
    end: date


def _counts() -> dict[str, Count]:
    return {
        "up": Count("pk", filter=Q(rating=Feedback.Rating.UP)),
        "down": Count("pk", filter=Q(rating=Feedback.Rating.DOWN)),
    }


def feedback_report(feedback: QuerySet[Feedback], *, days: int = CHART_DAYS) -> FeedbackReport:
    """Ratings of ``feedback`` per deployment and model, and per day over the last ``days``
    (UTC days, by when the rating was last given). Two grouped queries."""
    per_deployment = (
        feedback.values_list("message__deployment__name", "message__deployment__model")
        .annotate(**_counts())
        .order_by()
    )
    rows = [
        (name or "(no deployment)", model or "", Ratings(up, down))
        for name, model, up, down in per_deployment
    ]
    rows.sort(key=lambda row: (-row[2].total, row[0], row[1]))

    end = timezone.now().astimezone(UTC).date()
    start = end - timedelta(days=days - 1)
    per_day = {start + timedelta(days=n): Ratings() for n in range(days)}
    daily = (
        feedback.filter(updated_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
        .annotate(day=TruncDate("updated_at", tzinfo=UTC))
        .values_list("day")
        .annotate(**_counts())
        .order_by()
    )
    for day, up, down in daily:
        if day in per_day:
            per_day[day] = Ratings(up, down)
    chart = stacked_chart([(day, r, r.up, r.down) for day, r in per_day.items()])
    return FeedbackReport(deployments=rows, chart=chart, start=start, end=end)
