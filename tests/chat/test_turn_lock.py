"""The one statement a turn reads before it writes (chat.turn_lock), against the ORM's answers."""

import uuid

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.turn_lock import conversation_lock
from tests.factories import DeploymentFactory, UserFactory, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def lock(user, conversation, session_key, client_id=None):
    with transaction.atomic():
        return conversation_lock(
            user=user,
            conversation_id=conversation.pk,
            session_key=session_key,
            client_id=client_id,
            now=timezone.now(),
        )


def test_reads_the_conversation_and_its_deployments_as_the_orm_does() -> None:
    owner = UserFactory()
    deployment, head = DeploymentFactory(), DeploymentFactory()
    conversation = Conversation.objects.create(
        owner=owner,
        deployment=deployment,
        title="Budget",
        head_response_id="resp_1",
        head_deployment=head,
        head_created_at=timezone.now(),
    )
    locked = lock(owner, conversation, session_for(owner))
    assert locked is not None
    assert locked.session_current
    assert not locked.in_flight
    assert locked.repeated_id is None
    read = locked.conversation
    stored = Conversation.objects.get(pk=conversation.pk)
    for field in Conversation._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(stored, field.attname), field.name
    # Loaded with the row: using them costs no query.
    assert Conversation.deployment.is_cached(read)
    assert Conversation.head_deployment.is_cached(read)
    assert read.deployment == deployment
    assert read.deployment.endpoint == deployment.endpoint
    assert read.head_deployment == head
    assert read.open_deployment_id == deployment.pk


def test_another_persons_conversation_is_no_row() -> None:
    owner, stranger = UserFactory(), UserFactory()
    conversation = Conversation.objects.create(owner=owner, deployment=DeploymentFactory())
    assert lock(stranger, conversation, session_for(stranger)) is None


def test_a_conversation_without_deployment_reads_none() -> None:
    owner = UserFactory()
    conversation = Conversation.objects.create(owner=owner)
    locked = lock(owner, conversation, session_for(owner))
    assert locked is not None
    assert locked.conversation.deployment is None
    assert locked.conversation.head_deployment is None
    assert locked.conversation.open_deployment_id is None


def test_a_deployment_limited_to_other_groups_is_not_open() -> None:
    owner = UserFactory()
    deployment = DeploymentFactory()
    staff, finance = Group.objects.create(name="staff"), Group.objects.create(name="finance")
    deployment.allowed_groups.add(finance)
    conversation = Conversation.objects.create(owner=owner, deployment=deployment)
    key = session_for(owner)
    owner.groups.add(staff)
    assert lock(owner, conversation, key).conversation.open_deployment_id is None
    owner.groups.add(finance)
    assert lock(owner, conversation, key).conversation.open_deployment_id == deployment.pk


def test_the_session_must_be_live_and_the_user_active() -> None:
    owner = UserFactory()
    conversation = Conversation.objects.create(owner=owner, deployment=DeploymentFactory())
    key = session_for(owner)
    assert lock(owner, conversation, key).session_current
    assert not lock(owner, conversation, None).session_current
    assert not lock(owner, conversation, session_for(UserFactory())).session_current
    Session.objects.filter(session_key=key).update(expire_date=timezone.now())
    assert not lock(owner, conversation, key).session_current
    key = session_for(owner)
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert not lock(owner, conversation, key).session_current


def test_a_reply_in_flight_and_a_repeated_send_are_seen() -> None:
    owner = UserFactory()
    conversation = Conversation.objects.create(owner=owner, deployment=DeploymentFactory())
    key, client_id = session_for(owner), uuid.uuid4()
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text="hi", client_id=client_id
    )
    assert lock(owner, conversation, key, client_id).repeated_id == question.pk
    assert lock(owner, conversation, key, uuid.uuid4()).repeated_id is None
    assert not lock(owner, conversation, key).in_flight
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        reply_to=question,
    )
    assert lock(owner, conversation, key).in_flight
    Message.objects.filter(pk=reply.pk).update(status=Message.Status.COMPLETED)
    assert not lock(owner, conversation, key).in_flight
