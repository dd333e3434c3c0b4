"""One row's INSERT written once per process (chat.row_insert), against what the ORM saves."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from chat.models import Conversation, Message, StoredResponse
from chat.row_insert import Upsert, row_insert
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

KEEP = Upsert(unique=("deployment", "response_id"))
NAMING = Upsert(unique=("deployment", "response_id"), update=("message", "conversation"))


def stored_fields(row: Message) -> dict[str, object]:
    stored = Message.objects.get(pk=row.pk)
    return {
        field.attname: getattr(stored, field.attname)
        for field in Message._meta.concrete_fields
        if not field.primary_key
    }


def test_a_message_is_stored_as_the_orm_stores_it_and_gets_its_key() -> None:
    conversation = Conversation.objects.create(owner=UserFactory(), deployment=DeploymentFactory())
    now = timezone.now()
    fields = {
        "conversation": conversation,
        "role": Message.Role.USER,
        "text": "Où est la réunion ? 会议在哪里",
        "client_id": uuid.uuid4(),
        "created_at": now,
        "reasoning_items": [{"type": "reasoning", "encrypted_content": "x"}],
    }
    ours = Message(**fields)
    with CaptureQueriesContext(connection) as queries:
        row_insert(ours)
    assert len(queries) == 1
    assert ours.pk is not None
    assert not ours._state.adding
    theirs = Message.objects.create(**{**fields, "client_id": None})
    expected = {**stored_fields(theirs), "client_id": fields["client_id"]}
    assert stored_fields(ours) == expected
    # Defaults the row did not name are the model's: a completed message with no error.
    assert stored_fields(ours)["status"] == Message.Status.COMPLETED


def test_a_kept_copy_is_not_written_twice_and_naming_fills_in_its_message() -> None:
    deployment = DeploymentFactory()
    owner = UserFactory()
    conversation = Conversation.objects.create(owner=owner, deployment=deployment)
    reply = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT)
    now = timezone.now()

    def copy(**extra: object) -> StoredResponse:
        fields = {"endpoint": "https://first.example", **extra}
        return StoredResponse(
            response_id="resp_1",
            deployment=deployment,
            created_at=now,
            remote_expires_at=now,
            **fields,
        )

    row_insert(copy(), upsert=KEEP)
    row_insert(copy(endpoint="https://second.example"), upsert=KEEP)
    (row,) = StoredResponse.objects.all()
    assert row.endpoint == "https://first.example"
    assert row.message_id is None

    row_insert(
        copy(endpoint="https://third.example", message=reply, conversation=conversation),
        upsert=NAMING,
    )
    (row,) = StoredResponse.objects.all()
    assert (row.message_id, row.conversation_id) == (reply.pk, conversation.pk)
    assert row.endpoint == "https://first.example"


def test_a_model_with_save_receivers_is_refused() -> None:
    with pytest.raises(TypeError, match="save signal receivers"):
        row_insert(User(username="someone"))
    assert not User.objects.filter(username="someone").exists()
