"""Who may use which model: a deployment limited to groups is hidden from everyone else, and
a turn on one the person may no longer use is refused over the socket and over HTTP."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.test import AsyncClient, Client
from django.urls import reverse

from chat.models import Conversation, Deployment, Message
from tests.chat.sockets import connect, receive_until, send_payload
from tests.entra_fixtures import Provider, sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NO_LONGER = "You no longer have access to"


@pytest.fixture
def pilots(db) -> Group:
    return Group.objects.create(name="Chat.GPT5")


@pytest.fixture
def limited(make_sim_deployment, pilots: Group) -> Deployment:
    deployment = make_sim_deployment(name="GPT-5 pilot")
    deployment.allowed_groups.add(pilots)
    return deployment


def test_a_deployment_without_groups_is_open_to_everyone(make_sim_deployment, user) -> None:
    open_one = make_sim_deployment(name="Open")
    assert list(Deployment.objects.usable_by(user)) == [open_one]
    assert open_one.usable_by(user)


def test_a_limited_deployment_is_for_its_groups_members_only(
    limited: Deployment, pilots: Group, user, other_user
) -> None:
    other_user.groups.add(pilots, Group.objects.create(name="Unrelated"))
    assert not limited.usable_by(user)
    assert limited.usable_by(other_user)
    assert list(Deployment.objects.usable_by(other_user)) == [limited], "listed once"


def test_the_new_chat_picker_shows_only_what_the_person_may_use(
    client: Client, make_sim_deployment, limited: Deployment, pilots: Group, user
) -> None:
    make_sim_deployment(name="Everyone's model")
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "Everyone&#x27;s model" in html or "Everyone's model" in html
    assert "GPT-5 pilot" not in html

    response = client.post(
        reverse("conversation_create"), {"deployment": limited.pk, "text": "Hello"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "That model is no longer available" in response.content.decode()
    assert not Conversation.objects.filter(owner=user).exists()

    user.groups.add(pilots)
    assert "GPT-5 pilot" in client.get("/").content.decode()


async def test_a_turn_on_a_deployment_no_longer_allowed_is_refused_over_the_socket(
    limited: Deployment, pilots: Group
) -> None:
    person = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(person.groups.add)(pilots)
    conversation = await Conversation.objects.acreate(owner=person, deployment=limited)
    communicator, connected, _ = await connect(person, conversation)
    assert connected
    await database_sync_to_async(person.groups.remove)(pilots)

    await communicator.send_to(text_data=send_payload("Still there?"))
    frames = await receive_until(communicator, NO_LONGER)
    assert "GPT-5 pilot" in frames
    await communicator.disconnect()
    assert not await Message.objects.filter(conversation=conversation).aexists()


async def test_a_turn_on_a_deployment_no_longer_allowed_is_refused_over_http(
    limited: Deployment, user
) -> None:
    conversation = await Conversation.objects.acreate(owner=user, deployment=limited)
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(
        reverse("message_create", args=[conversation.pk]), {"text": "Still there?"}
    )
    assert response.status_code == 429
    html = response.content.decode()
    assert NO_LONGER in html
    assert ">Still there?</textarea>" in html, "the draft comes back"
    assert not await Message.objects.filter(conversation=conversation).aexists()


def test_the_conversation_stays_readable_with_the_way_out(
    client: Client, limited: Deployment, user, make_sim_deployment
) -> None:
    conversation = Conversation.objects.create(owner=user, deployment=limited, title="Old chat")
    Message.objects.create(conversation=conversation, role=Message.Role.USER, text="Earlier words")
    client.force_login(user)
    response = client.get(reverse("conversation_detail", args=[conversation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Earlier words" in html
    assert 'id="deployment-not-allowed"' in html
    assert "ask your administrator" in html, "no other model is open to this person"

    open_one = make_sim_deployment(name="Open to all")
    html = client.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert "pick another model under the message box" in html
    assert f'<option value="{open_one.pk}"' in html
    assert f'<option value="{limited.pk}"' not in html, "the picker offers only what is allowed"


def test_an_entra_app_role_opens_the_deployment_limited_to_it(
    client: Client, entra: Provider, limited: Deployment
) -> None:
    sign_in(client, entra, entra.add_person(roles=["Chat.User", "Chat.GPT5"]))
    assert "GPT-5 pilot" in client.get("/").content.decode()

    without = Client()
    sign_in(without, entra, entra.add_person(roles=["Chat.User"]))
    assert "GPT-5 pilot" not in without.get("/").content.decode()


def test_a_preset_on_a_deployment_the_person_may_not_use_is_not_offered(
    client: Client, limited: Deployment, pilots: Group, user
) -> None:
    from chat.models import Preset

    preset = Preset.objects.create(name="GPT-5 reviewer", deployment=limited)
    client.force_login(user)
    assert "GPT-5 reviewer" not in client.get("/").content.decode()
    picked = client.get(f"/?preset={preset.pk}").content.decode()
    assert f'value="{limited.pk}" selected' not in picked

    user.groups.add(pilots)
    assert "GPT-5 reviewer" in client.get("/").content.decode()
