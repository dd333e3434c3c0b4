"""Token usage, read from the usage each reply saved: the admin's report and the daily quota.

Days are UTC days. "Tokens" for the quota are input + output: cached tokens are part of the
input and reasoning tokens part of the output, so they are shown but not counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext

from accounts.models import User
from chat.charts import Chart, stacked_chart
from chat.models import Deployment, Message


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int = 0
    output: int = 0
    reasoning: int = 0
    cached: int = 0
    replies: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input + other.input,
            self.output + other.output,
            self.reasoning + other.reasoning,
            self.cached + other.cached,
            self.replies + other.replies,
        )


@dataclass(frozen=True, slots=True)
class UsageReport:
    start: date
    end: date
    days: list[tuple[date, Tokens]]  # every day of the range, oldest first, idle days included
    users: list[tuple[str, Tokens]]  # most tokens first
    deployments: list[tuple[str, Tokens]]  # most tokens first
    total: Tokens


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _by_total(totals: dict[str, Tokens]) -> list[tuple[str, Tokens]]:
    return sorted(totals.items(), key=lambda item: (-item[1].total, item[0]))


def usage_report(*, start: date, end: date) -> UsageReport:
    """Tokens per day, per user and per deployment from ``start`` to ``end`` (both included).

    One query, grouped by day, user and deployment; the three views are summed from it.
    """
    rows = (
        Message.objects.filter(
            role=Message.Role.ASSISTANT,
            created_at__gte=_midnight(start),
            created_at__lt=_midnight(end + timedelta(days=1)),
        )
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "conversation__owner__username", "deployment__name")
        .annotate(
            input=Coalesce(Sum("input_tokens"), 0),
            output=Coalesce(Sum("output_tokens"), 0),
            reasoning=Coalesce(Sum("reasoning_tokens"), 0),
            cached=Coalesce(Sum("cached_tokens"), 0),
            reply_count=Count("pk"),
        )
        .order_by()
    )
    days = {start + timedelta(days=n): Tokens() for n in range((end - start).days + 1)}
    users: dict[str, Tokens] = {}
    deployments: dict[str, Tokens] = {}
    total = Tokens()
    for row in rows:
        tokens = Tokens(
            row["input"], row["output"], row["reasoning"], row["cached"], row["reply_count"]
        )
        days[row["day"]] += tokens
        user = row["conversation__owner__username"]
        users[user] = users.get(user, Tokens()) + tokens
        deployment = row["deployment__name"] or "(no deployment)"
        deployments[deployment] = deployments.get(deployment, Tokens()) + tokens
        total += tokens
    return UsageReport(
        start=start,
        end=end,
        days=list(days.items()),
        users=_by_total(users),
        deployments=_by_total(deployments),
        total=total,
    )


def usage_chart(
    days: list[tuple[date, Tokens]], *, width: int = 720, height: int = 160
) -> Chart[Tokens]:
    """Daily tokens as stacked columns: input at the bottom, output on top."""
    return stacked_chart(
        [(day, tokens, tokens.input, tokens.output) for day, tokens in days],
        width=width,
        height=height,
    )


def tokens_today(*, user: User, deployment: Deployment) -> int:
    """Input + output tokens the user's replies on ``deployment`` used since midnight UTC."""
    since = _midnight(timezone.now().astimezone(UTC).date())
    used: int = Message.objects.filter(
        conversation__owner=user,
        deployment=deployment,
        role=Message.Role.ASSISTANT,
        created_at__gte=since,
    ).aggregate(used=Coalesce(Sum("input_tokens"), 0) + Coalesce(Sum("output_tokens"), 0))["used"]
    return used


def quota_refusal(*, user: User, deployment: Deployment) -> str | None:
    """Why the user may not start a turn on ``deployment`` today, or None when they may.

    At most one query, and none when the deployment has no quota.
    """
    quota = deployment.daily_token_quota
    if quota is None or tokens_today(user=user, deployment=deployment) < quota:
        return None
    return gettext(
        "You have used your %(quota)s tokens for today on %(model)s; "
        "the quota resets at midnight UTC."
    ) % {"quota": number_format(quota, force_grouping=True), "model": deployment.name}
