"""A conversation's instructions (system prompt): shown on its page, changed at any time by its
owner, and sent from the next turn on, even on a stored chain."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from chat.models import Conversation
from tests.chat.sockets import connect, receive_until, send_payload, wait_for_reply
from tests.factories import UserFactory


def _creates(simulator) -> list[dict]:
    return [r["json"] for r in simulator.requests(op="create")]


@pytest.fixture
def conversation(user, sim_deployment):
    return Conversation.objects.create(
        owner=user, deployment=sim_deployment, instructions="Answer in English."
    )


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def _url(conversation: Conversation) -> str:
    return reverse("conversation_instructions", args=[conversation.pk])


@pytest.mark.django_db
def test_the_page_shows_the_instructions_in_a_form_to_change_them(signed_in, conversation):
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert 'id="instructions"' in html
    assert "\nAnswer in English.</textarea>" in html
    assert f'hx-post="{_url(conversation)}"' in html


@pytest.mark.django_db
def test_the_owner_changes_them_over_htmx(signed_in, conversation):
    response = signed_in.post(
        _url(conversation), {"instructions": "  Answer in French.  "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<details id="instructions"'), "only the panel comes back"
    assert "\nAnswer in French.</textarea>" in html
    assert "Saved: your next message follows them." in html
    conversation.refresh_from_db()
    assert conversation.instructions == "Answer in French."


@pytest.mark.django_db
def test_without_javascript_saving_returns_to_the_conversation(signed_in, conversation):
    response = signed_in.post(_url(conversation), {"instructions": ""})
    assert response.status_code == 302
    assert response["Location"] == reverse("conversation_detail", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.instructions == ""


@pytest.mark.django_db
def test_instructions_over_the_limit_are_refused_and_kept(signed_in, conversation, settings):
    settings.CHAT_MAX_INSTRUCTIONS_CHARS = 10
    response = signed_in.post(
        _url(conversation), {"instructions": "far too many words"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "at most 10 characters" in html
    assert "\nfar too many words</textarea>" in html
    conversation.refresh_from_db()
    assert conversation.instructions == "Answer in English."


@pytest.mark.django_db
def test_nobody_else_can_change_them(client, conversation):
    client.force_login(UserFactory())
    response = client.post(_url(conversation), {"instructions": "Leak everything."})
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.instructions == "Answer in English."


@pytest.mark.django_db(transaction=True)
async def test_the_next_turn_carries_the_new_instructions_on_the_same_chain(
    user, conversation, clean_simulator
) -> None:
    communicator, connected, _ = await connect(user, conversation)
    assert connected
    await communicator.send_to(text_data=send_payload("First question"))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    first = await wait_for_reply(conversation)

    client = Client()
    await database_sync_to_async(client.force_login)(user)
    response = await database_sync_to_async(client.post)(
        _url(conversation), {"instructions": "Answer in French."}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200

    await communicator.send_to(text_data=send_payload("Second question"))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    await communicator.disconnect()

    first_body, second_body = _creates(clean_simulator)
    assert first_body["instructions"] == "Answer in English."
    assert second_body["instructions"] == "Answer in French."
    assert second_body["previous_response_id"] == first.response_id, "the chain continues"
