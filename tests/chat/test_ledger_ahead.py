"""The ledger is written ahead: every copy Azure names has its row before any of its text is
shown, retried and failed-over requests included, and each row is deleted where it lives."""

from typing import Any

import pytest

from azure_sim.testing import SimulatorServer
from chat.ledger import ledger_queue_deletions
from chat.models import Message, StoredResponse
from tests.chat.sockets import connect, conversation_on, receive_until, send_payload, wait_for_reply
from tests.chat.test_tasks import deletes_of, fast_ledger, run_worker, still_on_simulator
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["fast_ledger"]  # a fixture, used by name


@pytest.fixture
def owner(db):
    return UserFactory()


async def test_a_copy_is_in_the_ledger_before_any_of_its_text_is_shown(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, options="tps=100,words=100")
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Tell me something"))
    await receive_until(communicator, r'hx-swap-oob="beforeend">[^<]')
    (created,) = clean_simulator.requests(op="create")
    assert created["json"]["store"] is True
    row = await StoredResponse.objects.aget(conversation=conversation)
    assert row.state == StoredResponse.State.LIVE
    assert row.endpoint == conversation.deployment.endpoint
    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.in_flight, "recorded while the reply is still being written"
    await communicator.disconnect()
    reply = await wait_for_reply(conversation)
    await row.arefresh_from_db()
    assert row.response_id == reply.response_id
    assert row.message_id == reply.pk


async def test_a_request_retried_after_azure_named_it_leaves_both_copies_recorded(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("[[sim fault=cut after=0 times=1]] Hi"))
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()
    reply = await wait_for_reply(conversation)

    assert len(clean_simulator.requests(op="create")) == 2, "the gateway tried again"
    rows = {row.response_id: row async for row in StoredResponse.objects.all()}
    assert len(rows) == 2, "one row for each copy Azure made"
    kept = rows.pop(reply.response_id)
    (retried,) = rows.values()
    assert kept.state == StoredResponse.State.LIVE
    assert kept.message_id == reply.pk
    assert retried.state == StoredResponse.State.DELETING, "the unused copy is deleted"


def test_a_copy_is_deleted_on_the_resource_it_lives_on_after_a_re_point(
    sim_deployment, clean_simulator: SimulatorServer, fast_ledger: Any, settings
) -> None:
    from tests.chat.test_tasks import ledger_row, store_remote

    row = ledger_row(
        sim_deployment,
        store_remote(clean_simulator, sim_deployment),
        endpoint=sim_deployment.endpoint,
    )
    with SimulatorServer() as elsewhere:
        sim_deployment.endpoint = elsewhere.base_url
        sim_deployment.save()
        ledger_queue_deletions(rows=StoredResponse.objects.filter(pk=row.pk))
        run_worker()
        assert elsewhere.requests(op="delete") == [], "the new resource was never asked"
    row.refresh_from_db()
    assert row.state == StoredResponse.State.DELETED
    assert deletes_of(clean_simulator, row.response_id), "deleted where it lived"
    assert not still_on_simulator(clean_simulator, row.response_id)


async def test_a_failed_over_turn_records_and_forgets_the_failed_members_copy(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    """Sweden names a response, then fails before any text: its copy is recorded and deleted;
    France answers and its copy is the one kept."""
    from channels.db import database_sync_to_async

    from chat.models import Conversation

    settings.FAILOVER_FAILURE_THRESHOLD = 1
    make = database_sync_to_async(make_sim_deployment)
    sweden = await make(
        name="Sweden", options="fault=failed,after=0", failover_group="eu", priority=1
    )
    france = await make(name="France", failover_group="eu", priority=2)
    conversation = await Conversation.objects.acreate(owner=owner, deployment=sweden)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Hello"))
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()
    reply = await wait_for_reply(conversation)
    assert reply.deployment_id == france.pk
    rows = [row async for row in StoredResponse.objects.order_by("pk")]
    states = {row.deployment_id: row.state for row in rows}
    assert states == {sweden.pk: StoredResponse.State.DELETING, france.pk: "live"}
    assert len(rows) == 2
