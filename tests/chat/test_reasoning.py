"""Reasoning models: their effort (the deployment's default, the conversation's choice), their
thinking streamed into a "Thinking" section that folds away when the answer begins and saved
with the reply, and, on a stateless deployment, their sealed reasoning sent back with the
history so the model keeps its context while Azure keeps nothing."""

import re

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from chat.models import Conversation, Message
from tests.chat.sockets import (
    connect,
    conversation_on,
    model_requests,
    receive_until,
    send_payload,
    turn_and_wait,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_thinking_streams_open_folds_when_the_answer_begins_and_is_saved(
    owner, make_sim_deployment, clean_simulator
) -> None:
    # Paced, so that the summary streams before the answer (arriving at once, both would go
    # out in one frame, the thinking already folded).
    conversation = await conversation_on(
        owner, make_sim_deployment, model="o4-mini", options="tps=200,words=20"
    )
    communicator, _, _ = await connect(owner, conversation)
    frames, reply = await turn_and_wait(communicator, conversation, "Why is the sky blue?")
    await communicator.disconnect()

    thinking_id = f"message-{reply.pk}-thinking"
    opened = frames.index(f'<details id="{thinking_id}" class="thinking thinking-live" open')
    folded = frames.index(f'<details id="{thinking_id}" class="thinking" hx-swap-oob')
    first_text = frames.index(f'id="message-{reply.pk}-more" hx-swap-oob="beforeend"')
    assert opened < folded < first_text, "open while thinking, folded as the answer begins"
    assert reply.reasoning_summary.startswith("**Weighing the")
    assert reply.reasoning_html.startswith("<p><strong>Weighing the")
    assert reply.reasoning_tokens
    final = frames[frames.rindex('class="message message-assistant status-completed') :]
    assert f'<details id="{thinking_id}" class="thinking"><summary>Thinking</summary>' in final
    assert reply.reasoning_html in final
    assert re.search(r"[\d,]+ reasoning</span>", final), "the reply shows its reasoning tokens"
    assert reply.reasoning_items == [], "a stateful deployment's reasoning stays on Azure"


async def test_a_model_that_does_not_reason_shows_no_thinking(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    frames, reply = await turn_and_wait(communicator, conversation, "Hello")
    await communicator.disconnect()
    assert "thinking-live" not in frames
    assert reply.reasoning_summary == reply.reasoning_html == ""
    assert "reasoning" not in model_requests(clean_simulator)[0]


async def test_the_conversations_effort_or_else_the_deployments_goes_with_each_turn(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, model="o4-mini", reasoning_effort="high"
    )
    communicator, _, _ = await connect(owner, conversation)
    await turn_and_wait(communicator, conversation, "one")
    await Conversation.objects.filter(pk=conversation.pk).aupdate(reasoning_effort="low")
    await turn_and_wait(communicator, conversation, "two")
    # Chosen for a gpt-5 before a switch: o4-mini does not take it, so the default stands.
    await Conversation.objects.filter(pk=conversation.pk).aupdate(reasoning_effort="minimal")
    await turn_and_wait(communicator, conversation, "three")
    await communicator.disconnect()
    efforts = [body["reasoning"] for body in model_requests(clean_simulator)]
    assert efforts == [
        {"summary": "auto", "effort": "high"},
        {"summary": "auto", "effort": "low"},
        {"summary": "auto", "effort": "high"},
    ]


async def test_a_stateless_reasoning_deployment_sends_its_sealed_reasoning_back(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, model="o4-mini", store_policy="stateless"
    )
    communicator, _, _ = await connect(owner, conversation)
    _, first = await turn_and_wait(communicator, conversation, "Remember the number 42")
    _, second = await turn_and_wait(communicator, conversation, "Which number?")

    (item,) = first.reasoning_items
    assert item["type"] == "reasoning"
    assert item["encrypted_content"]
    body = model_requests(clean_simulator)[1]
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["input"] == [
        {"role": "user", "content": "Remember the number 42"},
        item,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Which number?"},
    ]
    assert second.status == Message.Status.COMPLETED, "the simulator verified the sealed item"

    # What is sent back is what was kept: tampered with, it no longer verifies.
    tampered = {**item, "encrypted_content": item["encrypted_content"][:-4] + "AAAA"}
    await Message.objects.filter(pk=first.pk).aupdate(reasoning_items=[tampered])
    await communicator.send_to(text_data=send_payload("And again?"))
    await receive_until(communicator, r"message-assistant status-failed")
    await communicator.disconnect()
    third = await Message.objects.filter(conversation=conversation).alast()
    assert third is not None
    assert third.status == Message.Status.FAILED
    assert model_requests(clean_simulator)[-1]["input"][1] == tampered


async def test_sealed_reasoning_goes_only_to_a_reasoning_model_of_its_resource(
    owner, make_sim_deployment, amake_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, model="o4-mini", store_policy="stateless"
    )
    plain = await amake_sim_deployment(name="Plain", model="gpt-4.1", store_policy="stateless")
    elsewhere = await amake_sim_deployment(
        name="Elsewhere", model="o4-mini", store_policy="stateless"
    )
    # The same simulator under another name: to the app, another resource.
    elsewhere.endpoint = clean_simulator.base_url.replace("127.0.0.1", "localhost")
    await elsewhere.asave(update_fields=["endpoint"])
    communicator, _, _ = await connect(owner, conversation)
    _, first = await turn_and_wait(communicator, conversation, "one")
    assert first.reasoning_items
    await turn_and_wait(communicator, conversation, "two", deployment=str(plain.pk))
    await turn_and_wait(communicator, conversation, "three", deployment=str(elsewhere.pk))
    await communicator.disconnect()
    for body in model_requests(clean_simulator)[1:]:
        assert all(entry.get("type") != "reasoning" for entry in body["input"])


async def test_the_effort_picker_is_for_ones_own_conversation_on_a_reasoning_model(
    owner, make_sim_deployment, amake_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, model="o4-mini")
    plain = await amake_sim_deployment(name="Plain", model="gpt-4.1")
    stranger = await database_sync_to_async(UserFactory)()
    theirs = await Conversation.objects.acreate(owner=stranger, deployment=conversation.deployment)
    client = Client()
    await database_sync_to_async(client.force_login)(owner)

    def pick_effort(conversation_id: int, effort: str):
        url = reverse("conversation_effort", args=[conversation_id])
        return client.post(url, {"reasoning_effort": effort}, headers={"HX-Request": "true"})

    def pick_model(deployment_id: int):
        url = reverse("conversation_model", args=[conversation.pk])
        return client.post(url, {"deployment": deployment_id}, headers={"HX-Request": "true"})

    page = await database_sync_to_async(client.get)(
        reverse("conversation_detail", args=[conversation.pk])
    )
    assert 'id="composer-effort"' in page.content.decode()
    assert (await database_sync_to_async(pick_effort)(theirs.pk, "low")).status_code == 404
    refused = await database_sync_to_async(pick_effort)(conversation.pk, "minimal")
    assert refused.status_code == 400, "o4-mini does not think at minimal"
    picked = await database_sync_to_async(pick_effort)(conversation.pk, "low")
    assert picked.status_code == 200
    assert '<option value="low" selected>' in picked.content.decode()
    assert (await Conversation.objects.aget(pk=conversation.pk)).reasoning_effort == "low"
    assert (await Conversation.objects.aget(pk=theirs.pk)).reasoning_effort == ""

    switched = (await database_sync_to_async(pick_model)(plain.pk)).content.decode()
    assert '<span id="effort-picker" class="effort-picker" hx-swap-oob="true"></span>' in switched
    assert (await database_sync_to_async(pick_effort)(conversation.pk, "low")).status_code == 400
    page = await database_sync_to_async(client.get)(
        reverse("conversation_detail", args=[conversation.pk])
    )
    assert 'id="composer-effort"' not in page.content.decode()


async def test_thinking_is_shown_after_a_reload(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, model="o4-mini")
    communicator, _, _ = await connect(owner, conversation)
    _, reply = await turn_and_wait(communicator, conversation, "Think first")
    await communicator.disconnect()
    client = Client()
    await database_sync_to_async(client.force_login)(owner)
    page = await database_sync_to_async(client.get)(
        reverse("conversation_detail", args=[conversation.pk])
    )
    html = page.content.decode()
    assert f'<details id="message-{reply.pk}-thinking" class="thinking">' in html
    assert reply.reasoning_html in html
