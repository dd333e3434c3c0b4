"""Remote deletion through a real django-tasks-db worker loop, against the simulator over HTTP.

The helpers here (``store_remote``, ``ledger_row``, ``run_worker``, ``deletes_of``) are shared
by the other ledger test modules.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import openai
import pytest
from django.db import connection
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from azure_sim.testing import SimulatorServer
from chat import llm
from chat.ledger import ledger_queue_deletions, ledger_requeue_stuck
from chat.models import Conversation, Deployment, Message, StoredResponse
from chat.tasks import delete_stored_response
from tests.factories import UserFactory
from tests.simulator_fixtures import SIMULATOR_KEY_ENV

pytestmark = pytest.mark.django_db(transaction=True)

State = StoredResponse.State


def store_remote(simulator: SimulatorServer, deployment: Deployment) -> str:
    """A response stored on the simulator (as a stateful turn leaves one); returns its id."""
    client = openai.OpenAI(
        base_url=simulator.openai_base_url, api_key=simulator.api_key, max_retries=0
    )
    with client:
        return client.responses.create(
            model=deployment.deployment_name, input="Hello", store=True
        ).id


def ledger_row(
    deployment: Deployment,
    response_id: str = "",
    *,
    user: User | None = None,
    age: timedelta = timedelta(0),
    **fields: Any,
) -> StoredResponse:
    """A ledger row for ``response_id``, with its user's conversation and reply message."""
    user = user or UserFactory()
    created_at = timezone.now() - age
    conversation = Conversation.objects.create(owner=user, deployment=deployment)
    message = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text="A reply",
        deployment=deployment,
        response_id=response_id,
        created_at=created_at,
    )
    fields.setdefault("remote_expires_at", created_at + deployment.remote_retention)
    return StoredResponse.objects.create(
        response_id=response_id or f"resp_{get_random_string(24)}",
        deployment=deployment,
        user=user,
        conversation=conversation,
        message=message,
        created_at=created_at,
        **fields,
    )


def _worker() -> Worker:
    return Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=get_random_string(12),
        excluded_queue_names=[],
    )


def run_worker(*, within: float = 10.0) -> None:
    """Run a worker until no task is waiting, retries scheduled for later included."""
    deadline = time.monotonic() + within
    while DBTaskResult.objects.filter(status="READY").exists():
        assert time.monotonic() < deadline, "tasks still waiting"
        _worker().run()
        time.sleep(0.005)


def deletes_of(simulator: SimulatorServer, response_id: str) -> list[dict[str, Any]]:
    return [r for r in simulator.requests(op="delete") if r["path"].endswith(f"/{response_id}")]


def still_on_simulator(simulator: SimulatorServer, response_id: str) -> bool:
    client = openai.OpenAI(
        base_url=simulator.openai_base_url, api_key=simulator.api_key, max_retries=0
    )
    with client:
        try:
            client.responses.retrieve(response_id)
        except openai.NotFoundError:
            return False
    return True


@pytest.fixture
def fast_ledger(settings: Any) -> Any:
    """Tiny backoff waits, three attempts at most."""
    settings.LEDGER_BACKOFF_BASE = 0.01
    settings.LEDGER_MAX_ATTEMPTS = 3
    return settings


@pytest.fixture
def queue_row(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, fast_ledger: Any
) -> Callable[[], StoredResponse]:
    """A stored response on the simulator, with its ledger row queued for deletion."""

    def make() -> StoredResponse:
        row = ledger_row(sim_deployment, store_remote(clean_simulator, sim_deployment))
        assert ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=row.pk)) == 1
        return row

    return make


def test_deletion_succeeds_and_is_confirmed_by_a_retrieve(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    row = queue_row()

    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert row.deleted_at is not None
    assert row.attempts == 1
    assert row.lease_expires_at is None
    assert not still_on_simulator(clean_simulator, row.response_id)
    ops = [
        (r["op"], r["status"]) for r in clean_simulator.requests() if row.response_id in r["path"]
    ]
    assert ops[:2] == [("delete", 200), ("retrieve", 404)]


def test_rate_limited_deletion_waits_for_retry_after_then_succeeds(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(op="delete", fault="rate_limit", times=1, retry_after_ms=400)
    row = queue_row()

    _worker().run()  # the first attempt only: its retry is not due yet

    row.refresh_from_db()
    assert row.state == State.DELETING
    assert row.attempts == 1
    assert "rate_limited" in row.last_error
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - timezone.now() > timedelta(seconds=0.2), "Retry-After honoured"
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.run_after == row.next_attempt_at

    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert row.attempts == 2
    assert [r["status"] for r in deletes_of(clean_simulator, row.response_id)] == [429, 200]


def test_repeated_server_errors_end_failed_with_the_error_then_a_requeue_finishes(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(op="delete", fault="server_error", times=3)
    row = queue_row()

    run_worker()

    row.refresh_from_db()
    assert row.state == State.FAILED
    assert row.attempts == 3
    assert "Gave up after 3 attempt(s)" in row.last_error
    assert "500" in row.last_error
    assert [r["status"] for r in deletes_of(clean_simulator, row.response_id)] == [500] * 3
    assert still_on_simulator(clean_simulator, row.response_id)

    assert ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=row.pk)) == 1
    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert not still_on_simulator(clean_simulator, row.response_id)


def test_a_response_azure_no_longer_has_counts_as_deleted(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, fast_ledger: Any
) -> None:
    response_id = store_remote(clean_simulator, sim_deployment)
    clean_simulator.expire(response_id)
    row = ledger_row(sim_deployment, response_id)
    ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=row.pk))

    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert row.attempts == 1
    assert [r["status"] for r in deletes_of(clean_simulator, response_id)] == [404]


def test_a_missing_key_fails_at_once_without_retrying(
    queue_row: Callable[[], StoredResponse],
    clean_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = queue_row()
    monkeypatch.delenv(SIMULATOR_KEY_ENV)

    run_worker()

    row.refresh_from_db()
    assert row.state == State.FAILED
    assert row.attempts == 1
    assert "auth_failed" in row.last_error
    assert deletes_of(clean_simulator, row.response_id) == []


def test_a_delete_that_azure_still_serves_is_not_marked_deleted(
    queue_row: Callable[[], StoredResponse],
    clean_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stands in for an upstream that acknowledges a delete it has not (yet) carried out.
    async def acknowledged_only(deployment: Deployment, response_id: str) -> bool:
        return True

    monkeypatch.setattr(llm, "delete_response", acknowledged_only)
    row = queue_row()

    run_worker()

    row.refresh_from_db()
    assert row.state == State.FAILED
    assert "still holds" in row.last_error
    assert len(clean_simulator.requests(op="retrieve")) == 3
    assert still_on_simulator(clean_simulator, row.response_id)


def test_a_task_for_a_row_no_longer_deleting_does_nothing(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    live = ledger_row(sim_deployment, store_remote(clean_simulator, sim_deployment))
    deleted = ledger_row(sim_deployment, state=State.DELETED)

    assert delete_stored_response.call(live.pk) == "skipped"
    assert delete_stored_response.call(deleted.pk) == "skipped"
    assert delete_stored_response.call(10**9) == "skipped"
    assert clean_simulator.requests(op="delete") == []


def test_a_row_leased_by_another_worker_is_left_to_it(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    row = queue_row()
    StoredResponse.objects.filter(pk=row.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=5)
    )

    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETING
    assert row.attempts == 0
    assert clean_simulator.requests(op="delete") == []


def test_two_workers_on_one_queue_delete_each_row_once(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, fast_ledger: Any
) -> None:
    rows = [
        ledger_row(sim_deployment, store_remote(clean_simulator, sim_deployment)) for _ in range(8)
    ]
    ledger_queue_deletions(rows=StoredResponse.objects.filter(pk__in=[r.pk for r in rows]))
    # Every row's task twice in a row (as a sweep re-queueing a slow worker's row would), so
    # the two workers keep picking up the same row at the same moment.
    DBTaskResult.objects.all().delete()
    for row in rows:
        delete_stored_response.enqueue(row.pk)
        delete_stored_response.enqueue(row.pk)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            _worker().run()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert set(StoredResponse.objects.values_list("state", flat=True)) == {State.DELETED}
    deletes = [r["path"].rsplit("/", 1)[1] for r in clean_simulator.requests(op="delete")]
    assert sorted(deletes) == sorted(row.response_id for row in rows)
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == 16
    skipped = DBTaskResult.objects.filter(return_value="skipped").count()
    assert skipped == 8


def test_a_killed_workers_row_is_taken_up_again_once_its_lease_runs_out(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    row = queue_row()
    # What a worker killed mid-deletion leaves: its task claimed for ever, the row leased.
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now())
    lease = timezone.now() + timedelta(minutes=5)
    StoredResponse.objects.filter(pk=row.pk).update(lease_expires_at=lease, attempts=1)

    assert ledger_requeue_stuck() == 0, "its lease still runs"
    StoredResponse.objects.filter(pk=row.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert ledger_requeue_stuck() == 1
    assert ledger_requeue_stuck() == 0, "queued once"
    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert row.attempts == 2
    assert len(deletes_of(clean_simulator, row.response_id)) == 1


def test_a_row_whose_worker_keeps_dying_ends_failed(
    queue_row: Callable[[], StoredResponse], clean_simulator: SimulatorServer
) -> None:
    row = queue_row()
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now())
    StoredResponse.objects.filter(pk=row.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1), attempts=3
    )

    assert ledger_requeue_stuck() == 0

    row.refresh_from_db()
    assert row.state == State.FAILED
    assert "worker stopped" in row.last_error
