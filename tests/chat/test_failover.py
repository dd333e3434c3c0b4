"""Failover candidates and each member's health, counted in the cache."""

import time
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chat.failover import failover_candidates, health, record_failure, record_success
from chat.models import Deployment
from tests.factories import DeploymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def failover_settings(settings: Any) -> Any:
    settings.FAILOVER_FAILURE_THRESHOLD = 2
    settings.FAILOVER_WINDOW_SECONDS = 60
    settings.FAILOVER_COOLDOWN_SECONDS = 60
    return settings


@pytest.fixture
def group() -> list[Deployment]:
    """Sweden (priority 10), then Norway (20), then France (30), all gpt-4.1 in group "eu"."""
    return [
        DeploymentFactory(name=name, region=region, failover_group="eu", priority=priority)
        for name, region, priority in (
            ("France", "francecentral", 30),
            ("Sweden", "swedencentral", 10),
            ("Norway", "norwayeast", 20),
        )
    ]


def names(deployments: list[Deployment]) -> list[str]:
    return [deployment.name for deployment in deployments]


def test_the_deployment_comes_first_then_its_group_by_priority(
    group: list[Deployment], user: User
) -> None:
    france = group[0]
    DeploymentFactory(name="Other model", failover_group="eu", model="gpt-5", priority=1)
    DeploymentFactory(name="Disabled", failover_group="eu", enabled=False, priority=1)
    DeploymentFactory(name="Other group", failover_group="us", priority=1)

    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Sweden", "Norway"]


def test_a_deployment_outside_any_group_stands_alone(user: User) -> None:
    alone = DeploymentFactory(failover_group="")
    DeploymentFactory(failover_group="")

    with CaptureQueriesContext(connection) as queries:
        assert failover_candidates(alone, user_id=user.pk) == [alone]
    assert len(queries) == 0


def test_a_member_failing_repeatedly_is_skipped_until_it_cools_down_or_succeeds(
    group: list[Deployment], user: User
) -> None:
    france, sweden, _ = group

    assert record_failure(sweden, reason="rate_limited") is False
    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Sweden", "Norway"]
    assert record_failure(sweden, reason="unavailable") is True

    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Norway"]
    assert names(failover_candidates(sweden, user_id=user.pk)) == ["Norway", "France"]
    state = health(sweden)
    assert state["cooling_down_until"] is not None
    assert state["last_failure_reason"] == "unavailable"

    record_success(sweden)

    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Sweden", "Norway"]
    assert health(sweden)["cooling_down_until"] is None
    assert health(sweden)["last_success_at"] is not None


def test_failures_spread_beyond_the_window_start_no_cool_down(
    group: list[Deployment], failover_settings: Any
) -> None:
    failover_settings.FAILOVER_WINDOW_SECONDS = 1
    sweden = group[1]
    record_failure(sweden)

    time.sleep(1.1)

    assert record_failure(sweden) is False
    assert health(sweden)["recent_failures"] == 1


def test_when_every_member_cools_down_the_deployment_itself_is_tried(
    group: list[Deployment], user: User
) -> None:
    for member in group:
        record_failure(member)
        record_failure(member)

    assert failover_candidates(group[0], user_id=user.pk) == [group[0]]


def test_failover_skips_members_the_person_may_not_use(group: list[Deployment], user: User) -> None:
    france, sweden, _ = group
    sweden.allowed_groups.add(Group.objects.create(name="Nordics"))

    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Norway"]
    user.groups.add(Group.objects.get(name="Nordics"))
    assert names(failover_candidates(france, user_id=user.pk)) == ["France", "Sweden", "Norway"]


def test_health_of_an_untouched_member_is_empty(group: list[Deployment]) -> None:
    assert health(group[0]) == {
        "recent_failures": 0,
        "cooling_down_until": None,
        "last_failure_at": None,
        "last_failure_reason": "",
        "last_success_at": None,
    }
