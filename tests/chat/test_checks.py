"""System checks: several server processes without Redis are refused."""

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from chat.checks import processes_share_redis, processes_share_redis_deploy


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages if m.id and m.id.startswith("chat.")]


def test_one_process_needs_no_redis(settings) -> None:
    settings.WEB_CONCURRENCY, settings.REDIS_URL, settings.DEBUG = 1, "", False
    assert processes_share_redis() == []
    assert processes_share_redis_deploy() == []


def test_several_processes_with_redis_pass(settings) -> None:
    settings.WEB_CONCURRENCY, settings.REDIS_URL, settings.DEBUG = 4, "redis://r:6379/0", False
    assert processes_share_redis() == []


def test_several_processes_without_redis_are_an_error_in_production(settings) -> None:
    settings.WEB_CONCURRENCY, settings.REDIS_URL, settings.DEBUG = 2, "", False
    assert ids(processes_share_redis()) == ["chat.E001"]
    with pytest.raises(SystemCheckError, match=r"chat\.E001.*REDIS_URL"):
        call_command("check")


def test_several_processes_without_redis_are_a_warning_in_development(settings) -> None:
    settings.WEB_CONCURRENCY, settings.REDIS_URL, settings.DEBUG = 2, "", True
    assert ids(checks.run_checks()) == ["chat.W001"]
    call_command("check")  # a warning does not stop anything


def test_check_deploy_refuses_several_processes_without_redis_even_in_development(
    settings,
) -> None:
    settings.WEB_CONCURRENCY, settings.REDIS_URL, settings.DEBUG = 3, "", True
    assert "chat.E001" in ids(checks.run_checks(include_deployment_checks=True))
    with pytest.raises(SystemCheckError, match=r"chat\.E001"):
        call_command("check", "--deploy", "--fail-level", "ERROR")
