"""The ledger's admin page says plainly when no task worker is running, and how to start one."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from chat.models import WorkerHeartbeat

# The worker closes its connections between tasks, as after every request.
pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:chat_storedresponse_changelist")


@pytest.fixture
def staff_client(client: Client, staff_user: User) -> Client:
    client.force_login(staff_user)
    return client


def run_worker_once() -> None:
    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)


def test_the_ledger_says_when_no_worker_has_ever_run(staff_client: Client) -> None:
    html = staff_client.get(CHANGELIST).content.decode()
    assert 'id="worker-notice"' in html
    assert "No task worker has run yet" in html
    assert "python manage.py db_worker" in html


def test_the_notice_is_gone_once_a_worker_has_run(staff_client: Client) -> None:
    run_worker_once()

    html = staff_client.get(CHANGELIST).content.decode()

    assert 'id="worker-notice"' not in html
    beat = WorkerHeartbeat.objects.get()
    assert timezone.now() - beat.seen_at < timedelta(seconds=10)


def test_the_ledger_says_when_the_worker_has_stopped_beating(
    staff_client: Client, settings
) -> None:
    settings.TASK_WORKER_HEARTBEAT_SECONDS = 30
    run_worker_once()
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=91))

    html = staff_client.get(CHANGELIST).content.decode()

    assert "No task worker has run since" in html
    assert "python manage.py db_worker" in html


def test_a_worker_seen_within_three_beats_counts_as_running(staff_client: Client, settings) -> None:
    settings.TASK_WORKER_HEARTBEAT_SECONDS = 30
    run_worker_once()
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=80))

    assert 'id="worker-notice"' not in staff_client.get(CHANGELIST).content.decode()


def test_a_heartbeat_forgets_workers_long_gone() -> None:
    WorkerHeartbeat.objects.create(
        worker_id="old", hostname="h", pid=1, seen_at=timezone.now() - timedelta(days=8)
    )
    run_worker_once()
    assert not WorkerHeartbeat.objects.filter(worker_id="old").exists()
