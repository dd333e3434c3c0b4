"""Queueing remote deletions: what each trigger queues, and what a queued row changes."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from chat.forms_admin import save_deployment
from chat.ledger import ledger_delete_orphan, ledger_queue_deletions
from chat.models import Conversation, Deployment, StoredResponse
from chat.services import conversation_delete
from tests.chat.test_tasks import ledger_row
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

State = StoredResponse.State


def queued_row_ids() -> list[int]:
    return sorted(task.args_kwargs["args"][0] for task in DBTaskResult.objects.all())


@pytest.fixture
def deployment() -> Deployment:
    return DeploymentFactory()


def test_queueing_marks_live_and_failed_rows_and_enqueues_one_task_each(
    deployment: Deployment, staff_user: User
) -> None:
    live = ledger_row(deployment)
    failed = ledger_row(deployment, state=State.FAILED, attempts=6, last_error="500")
    finished = [ledger_row(deployment, state=state) for state in (State.DELETED, State.EXPIRED)]

    queued = ledger_queue_deletions(rows=StoredResponse.objects.all(), requested_by=staff_user)

    assert queued == 2
    assert queued_row_ids() == sorted([live.pk, failed.pk])
    for row in (live, failed):
        row.refresh_from_db()
        assert row.state == State.DELETING
        assert row.attempts == 0
        assert row.last_error == ""
        assert row.deleted_by == staff_user
    assert {
        row.state for row in StoredResponse.objects.filter(pk__in=[r.pk for r in finished])
    } == {
        State.DELETED,
        State.EXPIRED,
    }


def test_queueing_twice_queues_nothing_twice(deployment: Deployment) -> None:
    ledger_row(deployment)

    assert ledger_queue_deletions(rows=StoredResponse.objects.all()) == 1
    assert ledger_queue_deletions(rows=StoredResponse.objects.all()) == 0
    assert DBTaskResult.objects.count() == 1


def test_queueing_the_head_makes_the_conversation_local_only(deployment: Deployment) -> None:
    head = ledger_row(deployment, "resp_head")
    conversation = head.conversation
    assert conversation is not None
    Conversation.objects.filter(pk=conversation.pk).update(
        head_response_id="resp_head", head_deployment=deployment, head_created_at=timezone.now()
    )
    other = ledger_row(deployment, "resp_other_head")
    Conversation.objects.filter(pk=other.conversation_id).update(
        head_response_id="resp_other_head", head_deployment=deployment
    )
    conversation.refresh_from_db()
    assert conversation.head_usable_for(deployment)

    ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=head.pk))

    conversation.refresh_from_db()
    assert conversation.head_response_id == ""
    assert conversation.head_deployment is None
    assert not conversation.head_usable_for(deployment), "the next turn rebuilds its history"
    assert Conversation.objects.get(pk=other.conversation_id).head_response_id == (
        "resp_other_head"
    )


def test_a_deleted_conversation_leaves_no_live_copy(deployment: Deployment, user: User) -> None:
    first = ledger_row(deployment, user=user)
    second = ledger_row(deployment, user=user)
    StoredResponse.objects.filter(pk=second.pk).update(conversation=first.conversation)
    assert first.conversation is not None

    queued = conversation_delete(conversation=first.conversation, deleted_by=user)

    assert queued == 2
    assert not Conversation.objects.filter(pk=first.conversation_id).exists()
    assert set(StoredResponse.objects.values_list("state", flat=True)) == {State.DELETING}
    assert queued_row_ids() == sorted([first.pk, second.pk])


def test_conversations_deleted_in_the_admin_queue_their_copies(
    deployment: Deployment, client: Client, staff_user: User
) -> None:
    row = ledger_row(deployment)
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:chat_conversation_changelist"),
        {"action": "delete_selected", "_selected_action": [row.conversation_id], "post": "yes"},
    )

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.conversation is None
    assert row.state == State.DELETING
    assert queued_row_ids() == [row.pk]


def test_a_removed_user_has_their_copies_queued_before_the_link_is_lost(
    deployment: Deployment,
) -> None:
    leaving, staying = UserFactory(), UserFactory()
    theirs = ledger_row(deployment, user=leaving)
    others = ledger_row(deployment, user=staying)

    leaving.delete()

    theirs.refresh_from_db()
    others.refresh_from_db()
    assert theirs.user is None
    assert theirs.state == State.DELETING
    assert others.state == State.LIVE
    assert queued_row_ids() == [theirs.pk]


def test_a_deactivated_user_has_their_copies_queued(deployment: Deployment) -> None:
    person = UserFactory()
    row = ledger_row(deployment, user=person)
    person.last_name = "Renamed"
    person.save()
    assert StoredResponse.objects.get(pk=row.pk).state == State.LIVE

    person.is_active = False
    person.save()

    assert StoredResponse.objects.get(pk=row.pk).state == State.DELETING
    assert queued_row_ids() == [row.pk]


def test_a_changed_retention_moves_the_expiry_of_live_rows(deployment: Deployment) -> None:
    live = ledger_row(deployment, age=timedelta(hours=10))
    deleted = ledger_row(deployment, age=timedelta(hours=10), state=State.DELETED)
    before = deleted.remote_expires_at

    deployment.remote_retention_hours = 24
    save_deployment(deployment)

    live.refresh_from_db()
    deleted.refresh_from_db()
    assert live.remote_expires_at == live.created_at + timedelta(hours=24)
    assert deleted.remote_expires_at == before


def test_a_copy_whose_conversation_is_gone_is_recorded_and_queued(
    deployment: Deployment,
) -> None:
    ledger_delete_orphan(
        deployment=deployment, response_id="resp_orphan", request_id="req-1", region="eastus2"
    )
    ledger_delete_orphan(deployment=deployment, response_id="resp_orphan")

    row = StoredResponse.objects.get(response_id="resp_orphan")
    assert row.state == State.DELETING
    assert (row.conversation, row.user, row.region) == (None, None, "eastus2")
    assert queued_row_ids() == [row.pk]
