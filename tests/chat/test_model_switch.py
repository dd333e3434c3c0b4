"""Switching model within a conversation: the composer's picker sends the next turn to the
deployment picked, continuing Azure's chain on the same resource and rebuilding the history on
another; each reply names the model that wrote it."""

import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from chat.models import Conversation, Deployment
from tests.chat.sockets import (
    connect,
    model_requests,
    receive_until,
    turn_and_wait,
    wait_for_reply,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETED = r"message-assistant status-completed"


async def test_a_model_on_the_same_resource_continues_the_chain(
    owner, conversation, amake_sim_deployment, clean_simulator
) -> None:
    other = await amake_sim_deployment(name="GPT-5 here", model="gpt-5")
    communicator, _, _ = await connect(owner, conversation)
    _, first = await turn_and_wait(communicator, conversation, "[[sim echo]]one")
    frames, second = await turn_and_wait(
        communicator, conversation, "[[sim echo]]two", deployment=str(other.pk)
    )
    await communicator.disconnect()
    request = model_requests(clean_simulator)[-1]
    assert request["model"] == other.deployment_name
    assert request["previous_response_id"] == first.response_id
    assert second.deployment_id == other.pk
    assert ">GPT-5 here</span>" in frames, "the reply names the model that wrote it"
    assert (await Conversation.objects.aget(pk=conversation.pk)).deployment_id == other.pk


async def test_a_model_on_another_resource_gets_the_history(
    owner, conversation, amake_sim_deployment, clean_simulator
) -> None:
    elsewhere = await amake_sim_deployment(name="Elsewhere")
    # The same simulator under another name: to the app, another resource.
    await Deployment.objects.filter(pk=elsewhere.pk).aupdate(
        endpoint=clean_simulator.base_url.replace("127.0.0.1", "localhost")
    )
    communicator, _, _ = await connect(owner, conversation)
    await turn_and_wait(communicator, conversation, "[[sim echo]]one")
    _, reply = await turn_and_wait(
        communicator, conversation, "[[sim echo]]two", deployment=str(elsewhere.pk)
    )
    _, third = await turn_and_wait(communicator, conversation, "[[sim echo]]three")
    await communicator.disconnect()
    switched, after = model_requests(clean_simulator)[-2:]
    assert switched.get("previous_response_id") is None
    assert switched["input"] == [
        {"role": "user", "content": "[[sim echo]]one"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "[[sim echo]]two"},
    ]
    assert reply.context_rebuilt, "the history went instead of the chain"
    assert after["previous_response_id"] == reply.response_id, "then on along the new chain"
    assert third.deployment_id == elsewhere.pk


async def test_the_picker_switches_only_to_a_usable_model_of_ones_own_conversation(
    owner, conversation, sim_deployment, amake_sim_deployment, clean_simulator
) -> None:
    other = await amake_sim_deployment(name="Other")
    switched_off = await amake_sim_deployment(name="Off", enabled=False)
    stranger = await database_sync_to_async(UserFactory)()
    theirs = await Conversation.objects.acreate(owner=stranger, deployment=sim_deployment)
    client = Client()
    await database_sync_to_async(client.force_login)(owner)

    def pick(conversation_id: int, deployment_id: int):
        url = reverse("conversation_model", args=[conversation_id])
        return client.post(url, {"deployment": deployment_id}, headers={"HX-Request": "true"})

    page = await database_sync_to_async(client.get)(
        reverse("conversation_detail", args=[conversation.pk])
    )
    assert 'id="composer-model"' in page.content.decode()
    assert ">Off</option>" not in page.content.decode(), "only usable models offered"
    assert (await database_sync_to_async(pick)(theirs.pk, other.pk)).status_code == 404
    assert (await database_sync_to_async(pick)(conversation.pk, switched_off.pk)).status_code == 400
    response = await database_sync_to_async(pick)(conversation.pk, other.pk)
    assert response.status_code == 200
    assert "Other" in response.content.decode()

    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=json.dumps({"text": "[[sim echo]]hi"}))
    await receive_until(communicator, COMPLETED)
    await communicator.disconnect()
    assert (await wait_for_reply(conversation)).deployment_id == other.pk
    assert (await Conversation.objects.aget(pk=theirs.pk)).deployment_id == sim_deployment.pk
