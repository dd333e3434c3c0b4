"""Editing a message and regenerating a reply make branches; the arrows move between them, and
the conversation continues on the branch shown, from its own stored response."""

import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from chat import services
from chat.models import Conversation, Message, StoredResponse
from chat.selectors import conversation_branch_messages
from tests.chat.sockets import (
    connect,
    model_requests,
    receive_until,
    send_payload,
    turn_and_wait,
    wait_for_reply,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETED = r"message-assistant status-completed"


async def turn(communicator, conversation, text: str, **extra: str) -> Message:
    return (await turn_and_wait(communicator, conversation, text, **extra))[1]


async def regenerate(communicator, conversation, reply: Message) -> tuple[str, Message]:
    await communicator.send_to(
        text_data=json.dumps({"action": "regenerate", "message_id": str(reply.pk)})
    )
    frames = await receive_until(communicator, COMPLETED)
    return frames, await wait_for_reply(conversation)


async def shown(conversation: Conversation) -> list[tuple[str, str]]:
    fresh = await Conversation.objects.aget(pk=conversation.pk)
    messages = await database_sync_to_async(conversation_branch_messages)(fresh)
    return [(m.role, m.text) for m in messages]


def echo(text: str) -> str:
    return f"[[sim echo]]{text}"


async def test_editing_a_message_makes_a_branch_and_keeps_the_old_one(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await turn(communicator, conversation, echo("first"))
    await turn(communicator, conversation, echo("second"))
    first = await Message.objects.filter(conversation=conversation, role="user").afirst()
    payload = send_payload(echo("first, edited"), action="edit", message_id=str(first.pk))
    await communicator.send_to(text_data=payload)
    frames = await receive_until(communicator, COMPLETED)
    await communicator.disconnect()

    assert 'hx-swap-oob="innerHTML:#messages"' in frames, "the tab shows the new branch"
    assert "2 / 2" in frames
    assert await shown(conversation) == [
        ("user", echo("first, edited")),
        ("assistant", "first, edited"),
    ]
    assert await Message.objects.filter(conversation=conversation).acount() == 6, "old kept"
    request = model_requests(clean_simulator)[-1]
    assert "previous_response_id" not in request or request["previous_response_id"] is None
    assert request["input"] == [{"role": "user", "content": echo("first, edited")}]


async def test_regenerating_an_earlier_reply_continues_from_the_reply_before_it(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    one = await turn(communicator, conversation, echo("one"))
    two = await turn(communicator, conversation, echo("two"))
    await turn(communicator, conversation, echo("three"))

    frames, again = await regenerate(communicator, conversation, two)
    assert "2 / 2" in frames
    request = model_requests(clean_simulator)[-1]
    assert request["previous_response_id"] == one.response_id, "no history resent"
    assert request["input"] == echo("two")
    assert await shown(conversation) == [
        ("user", echo("one")),
        ("assistant", "one"),
        ("user", echo("two")),
        ("assistant", again.text),
    ]

    await turn(communicator, conversation, echo("four"))
    await communicator.disconnect()
    assert model_requests(clean_simulator)[-1]["previous_response_id"] == again.response_id
    copies = StoredResponse.objects.filter(conversation=conversation)
    assert await copies.acount() == 5, "every branch's copies are in the ledger"


async def test_the_arrows_move_between_branches_and_the_next_turn_continues_there(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await turn(communicator, conversation, echo("one"))
    two = await turn(communicator, conversation, echo("two"))
    three = await turn(communicator, conversation, echo("three"))
    await regenerate(communicator, conversation, two)

    client = Client()
    await database_sync_to_async(client.force_login)(owner)
    url = reverse("branch_show", args=[conversation.pk, two.pk])
    response = await database_sync_to_async(client.post)(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 / 2" in page
    assert echo("three") in page, "the old branch, down to its newest message"
    other_tab = await receive_until(communicator, r"innerHTML:#messages")
    assert echo("three") in other_tab, "the conversation's tabs follow"

    await turn(communicator, conversation, echo("five"))
    await communicator.disconnect()
    assert model_requests(clean_simulator)[-1]["previous_response_id"] == three.response_id
    assert [text for _, text in await shown(conversation)][-2:] == [echo("five"), "five"]


async def test_rebuilt_history_follows_the_branch_shown(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    one = await turn(communicator, conversation, echo("one"))
    two = await turn(communicator, conversation, echo("two"))
    await turn(communicator, conversation, echo("three on the old branch"))
    # Azure no longer keeps the reply the new branch grows from: its history goes instead.
    await StoredResponse.objects.filter(response_id=one.response_id).aupdate(state="deleted")

    await regenerate(communicator, conversation, two)
    await communicator.disconnect()
    request = model_requests(clean_simulator)[-1]
    assert request.get("previous_response_id") is None
    assert request["input"] == [
        {"role": "user", "content": echo("one")},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": echo("two")},
    ]


async def test_another_persons_message_cannot_be_edited_regenerated_or_shown(
    owner, conversation, sim_deployment, clean_simulator
) -> None:
    stranger = await database_sync_to_async(UserFactory)()
    theirs = await Conversation.objects.acreate(owner=stranger, deployment=sim_deployment)
    their_question = await Message.objects.acreate(conversation=theirs, role="user", text="x")
    their_reply = await Message.objects.acreate(
        conversation=theirs, role="assistant", text="y", reply_to=their_question
    )
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(
        text_data=send_payload("mine now", action="edit", message_id=str(their_question.pk))
    )
    assert "That message cannot be edited." in await receive_until(communicator, "alert")
    await communicator.send_to(
        text_data=json.dumps({"action": "regenerate", "message_id": str(their_reply.pk)})
    )
    assert "cannot be regenerated" in await receive_until(communicator, "alert")
    await communicator.disconnect()
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    assert await Message.objects.filter(conversation=theirs).acount() == 2

    client = Client()
    await database_sync_to_async(client.force_login)(owner)
    for url in (
        reverse("branch_show", args=[theirs.pk, their_reply.pk]),
        reverse("branch_show", args=[conversation.pk, their_reply.pk]),
    ):
        assert (await database_sync_to_async(client.post)(url)).status_code == 404


async def test_deleting_a_conversation_deletes_every_branchs_copies(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await turn(communicator, conversation, echo("one"))
    two = await turn(communicator, conversation, echo("two"))
    await regenerate(communicator, conversation, two)
    await communicator.disconnect()
    copies = [
        row.response_id
        async for row in StoredResponse.objects.filter(conversation=conversation, state="live")
    ]
    assert two.response_id in copies
    assert len(copies) == 3

    queued = await database_sync_to_async(services.conversation_delete)(conversation=conversation)
    assert queued == 3
    rows = StoredResponse.objects.filter(response_id__in=copies)
    assert {row.state async for row in rows} <= {"deleting", "deleted"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("message_edit", {"text": "hijacked"}),
        ("message_regenerate", {}),
        ("branch_show", {}),
    ],
)
def test_another_persons_conversation_is_404_over_http(owner, sim_deployment, name, data) -> None:
    stranger = UserFactory()
    theirs = Conversation.objects.create(owner=stranger, deployment=sim_deployment)
    question = Message.objects.create(conversation=theirs, role="user", text="secret")
    client = Client()
    client.force_login(owner)
    response = client.post(reverse(name, args=[theirs.pk, question.pk]), data)
    assert response.status_code == 404
    assert Message.objects.filter(conversation=theirs).count() == 1


def test_editing_without_websockets_makes_the_same_branch(owner, conversation) -> None:
    question = Message.objects.create(conversation=conversation, role="user", text="first")
    Message.objects.create(
        conversation=conversation, role="assistant", text="answer", reply_to=question
    )
    client = Client()
    client.force_login(owner)
    url = reverse("message_edit", args=[conversation.pk, question.pk])
    response = client.post(url, {"text": "[[sim echo]]first, edited"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    texts = [m.text for m in conversation_branch_messages(conversation)]
    assert texts[0] == "[[sim echo]]first, edited"
    assert Message.objects.filter(conversation=conversation, text="first").exists()
