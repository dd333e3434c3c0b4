"""Fixtures the chat tests share: a person, and a conversation of theirs on the simulator."""

from collections.abc import AsyncIterator

import pytest

from chat import replies
from chat.models import Conversation
from tests.factories import UserFactory


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def conversation(owner, sim_deployment):
    return Conversation.objects.create(owner=owner, deployment=sim_deployment)


@pytest.fixture(autouse=True)
async def replies_end_with_their_test() -> AsyncIterator[None]:
    """A reply outlives the socket that started it, and its task runs in the test's event
    loop: it is settled as the server settles it at shutdown before the loop closes and the
    database is flushed, so no reply of this test is still writing into the next one."""
    yield
    await replies.replies_shutdown()
