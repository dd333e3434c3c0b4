"""Spans of time read as a person would write them: "1 hour", never "1 hours"."""

import pytest

from chat.llm import rate_limited_message
from chat.models import Deployment


@pytest.mark.parametrize(
    ("hours", "label"),
    [
        (1, "Azure keeps a copy for 1 hour"),
        (5, "Azure keeps a copy for 5 hours"),
        (24, "Azure keeps a copy for 1 day"),
        (36, "Azure keeps a copy for 36 hours"),
        (720, "Azure keeps a copy for 30 days"),
    ],
)
def test_the_retention_label_counts_in_the_right_number(hours: int, label: str) -> None:
    assert Deployment(remote_retention_hours=hours).retention_label == label


def test_a_stateless_deployment_keeps_nothing() -> None:
    deployment = Deployment(store_policy=Deployment.StorePolicy.STATELESS)
    assert deployment.retention_label == "Nothing kept on Azure"


def test_a_wait_of_one_second_is_one_second() -> None:
    assert rate_limited_message(0.4).endswith("Try again in 1 second.")
    assert rate_limited_message(2).endswith("Try again in 2 seconds.")


@pytest.mark.django_db
def test_our_own_rate_limit_says_second_for_one(user, settings) -> None:
    from chat import turn_checks

    settings.CHAT_RATE_LIMIT = 0
    settings.CHAT_RATE_WINDOW = 1  # whatever is left of a one-second window rounds up to 1
    with pytest.raises(turn_checks.TurnRefused, match=r"Try again in 1 second\.$"):
        turn_checks.refuse_over_rate_limit(user=user)
