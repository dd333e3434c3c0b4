"""The retention sweep: `manage.py retention_sweep` and its task."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from azure_sim.testing import SimulatorServer
from chat.models import Deployment, Message, StoredResponse
from tests.chat.test_tasks import deletes_of, ledger_row, run_worker, store_remote
from tests.factories import DeploymentFactory

State = StoredResponse.State


def sweep() -> str:
    out = StringIO()
    call_command("retention_sweep", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_copies_older_than_their_deployments_retention_are_queued() -> None:
    one_day = DeploymentFactory(remote_retention_hours=24)
    thirty_days = DeploymentFactory(remote_retention_hours=720)
    due = ledger_row(one_day, age=timedelta(hours=25))
    young = ledger_row(one_day, age=timedelta(hours=23))
    kept = ledger_row(thirty_days, age=timedelta(hours=700))
    already_failed = ledger_row(one_day, age=timedelta(hours=30), state=State.FAILED)

    output = sweep()

    assert "1 deletion(s) queued" in output
    assert StoredResponse.objects.get(pk=due.pk).state == State.DELETING
    assert StoredResponse.objects.get(pk=young.pk).state == State.LIVE
    assert StoredResponse.objects.get(pk=kept.pk).state == State.LIVE
    assert StoredResponse.objects.get(pk=already_failed.pk).state == State.FAILED, (
        "a failed deletion waits for an admin"
    )
    assert [task.args_kwargs["args"] for task in DBTaskResult.objects.all()] == [[due.pk]]


@pytest.mark.django_db
def test_copies_past_azures_thirty_days_are_marked_expired_not_deleted() -> None:
    deployment = DeploymentFactory(remote_retention_hours=24)
    live = ledger_row(deployment, age=timedelta(hours=721))
    failed = ledger_row(deployment, age=timedelta(hours=800), state=State.FAILED)
    deleted = ledger_row(deployment, age=timedelta(hours=800), state=State.DELETED)

    output = sweep()

    assert "2 copy(ies) marked expired" in output
    assert StoredResponse.objects.get(pk=live.pk).state == State.EXPIRED
    assert StoredResponse.objects.get(pk=failed.pk).state == State.EXPIRED
    assert StoredResponse.objects.get(pk=deleted.pk).state == State.DELETED
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_running_the_sweep_again_queues_nothing_more() -> None:
    ledger_row(DeploymentFactory(remote_retention_hours=1), age=timedelta(hours=2))

    assert "1 deletion(s) queued" in sweep()
    assert "0 deletion(s) queued, 0 copy(ies) marked expired, 0 stopped" in sweep()
    assert DBTaskResult.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_swept_copy_is_deleted_on_azure_and_the_local_history_stays(
    make_sim_deployment: Any, clean_simulator: SimulatorServer
) -> None:
    deployment: Deployment = make_sim_deployment(remote_retention_hours=1)
    row = ledger_row(deployment, store_remote(clean_simulator, deployment), age=timedelta(hours=2))

    call_command("retention_sweep", "--enqueue", stdout=StringIO())
    run_worker()

    row.refresh_from_db()
    assert row.state == State.DELETED
    assert [r["status"] for r in deletes_of(clean_simulator, row.response_id)] == [200]
    assert Message.objects.filter(pk=row.message_id, text="A reply").exists()
    assert row.conversation is not None
