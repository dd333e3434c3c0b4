"""Fixtures the chat tests share: a person, and a conversation of theirs on the simulator."""

import pytest

from chat.models import Conversation
from tests.factories import UserFactory


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def conversation(owner, sim_deployment):
    return Conversation.objects.create(owner=owner, deployment=sim_deployment)
