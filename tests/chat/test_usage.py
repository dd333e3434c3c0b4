"""Token usage: the report's numbers, its chart, and the daily quota."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from chat.models import Conversation, Deployment, Message
from chat.usage import Tokens, quota_refusal, usage_chart, usage_report
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


def reply(
    user: User,
    deployment: Deployment | None,
    at: datetime,
    *,
    input: int | None = 0,
    output: int | None = 0,
    reasoning: int | None = 0,
    cached: int | None = 0,
) -> Message:
    conversation = Conversation.objects.create(owner=user, deployment=deployment)
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        deployment=deployment,
        created_at=at,
        input_tokens=input,
        output_tokens=output,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
    )


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_usage_is_summed_per_day_user_and_deployment() -> None:
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    sweden, norway = DeploymentFactory(name="Sweden"), DeploymentFactory(name="Norway")
    first, second = date(2026, 3, 1), date(2026, 3, 2)
    reply(ada, sweden, at(first, 0), input=100, output=10, reasoning=4, cached=50)
    reply(ada, sweden, at(first, 23), input=200, output=20)
    reply(ada, norway, at(second, 12), input=1000, output=100, cached=800)
    reply(bob, sweden, at(second, 1), input=5, output=5)
    reply(bob, None, at(second, 2), input=None, output=None, reasoning=None, cached=None)
    Message.objects.create(
        conversation=Conversation.objects.create(owner=bob),
        role=Message.Role.USER,
        created_at=at(first, 1),
        input_tokens=999,
    )
    reply(ada, sweden, at(date(2026, 3, 3), 0), input=7)  # the day after the range
    reply(ada, sweden, at(date(2026, 2, 28), 23), input=7)  # the day before it

    report = usage_report(start=first, end=second)

    assert report.days == [
        (first, Tokens(input=300, output=30, reasoning=4, cached=50, replies=2)),
        (second, Tokens(input=1005, output=105, reasoning=0, cached=800, replies=3)),
    ]
    assert report.users == [
        ("ada", Tokens(input=1300, output=130, reasoning=4, cached=850, replies=3)),
        ("bob", Tokens(input=5, output=5, reasoning=0, cached=0, replies=2)),
    ]
    assert report.deployments == [
        ("Norway", Tokens(input=1000, output=100, reasoning=0, cached=800, replies=1)),
        ("Sweden", Tokens(input=305, output=35, reasoning=4, cached=50, replies=3)),
        ("(no deployment)", Tokens(replies=1)),
    ]
    assert report.total == Tokens(input=1305, output=135, reasoning=4, cached=850, replies=5)
    assert report.total.total == 1440


def test_idle_days_are_in_the_report_and_the_chart_is_stacked_to_scale() -> None:
    ada, sweden = UserFactory(), DeploymentFactory()
    day = date(2026, 3, 1)
    reply(ada, sweden, at(day, 9), input=300, output=100)
    reply(ada, sweden, at(day + timedelta(days=2), 9), input=100, output=100)

    report = usage_report(start=day, end=day + timedelta(days=3))
    chart = usage_chart(report.days, width=400, height=100)

    assert [tokens.total for _, tokens in report.days] == [400, 0, 200, 0]
    assert chart.peak == 400
    tallest, idle, half = chart.bars[:3]
    assert (tallest.lower_height, tallest.upper_height) == (75, 25)
    assert (tallest.lower_y, tallest.upper_y) == (25, 0)
    assert (half.lower_height, half.upper_height, half.upper_y) == (25, 25, 50)
    assert idle.lower_height == idle.upper_height == 0
    assert [bar.x for bar in chart.bars] == [10, 110, 210, 310]
    assert tallest.width == 80


def test_a_chart_of_nothing_has_flat_bars() -> None:
    chart = usage_chart([(date(2026, 3, 1), Tokens())])

    assert chart.peak == 0
    assert chart.bars[0].lower_height == 0


def test_quota_refuses_once_todays_tokens_on_the_deployment_reach_it(
    django_assert_num_queries: object,
) -> None:
    ada = UserFactory()
    sweden = DeploymentFactory(name="GPT-4.1 Sweden", daily_token_quota=50_000)
    norway = DeploymentFactory(name="GPT-4.1 Norway", daily_token_quota=50_000)
    now = timezone.now()
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    reply(ada, sweden, today, input=30_000, output=19_999)
    reply(ada, sweden, today - timedelta(seconds=1), input=90_000)  # yesterday
    reply(ada, norway, today, input=90_000)
    reply(UserFactory(), sweden, today, input=90_000)

    with django_assert_num_queries(1):  # type: ignore[operator]
        assert quota_refusal(user=ada, deployment=sweden) is None

    reply(ada, sweden, now, input=1, output=None)

    assert quota_refusal(user=ada, deployment=sweden) == (
        "You have used your 50,000 tokens for today on GPT-4.1 Sweden; "
        "the quota resets at midnight UTC."
    )


def test_a_deployment_without_quota_never_refuses_and_asks_nothing(
    django_assert_num_queries: object,
) -> None:
    ada, sweden = UserFactory(), DeploymentFactory()
    reply(ada, sweden, timezone.now(), input=10**9)

    with django_assert_num_queries(0):  # type: ignore[operator]
        assert quota_refusal(user=ada, deployment=sweden) is None
