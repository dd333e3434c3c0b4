"""Presets: assistants the admins define, offered on the new-chat page, and personal presets
saved from a conversation, seen and deleted only by their owner."""

import asyncio

import pytest
from django.test import AsyncClient, Client
from django.urls import reverse

from chat.models import Conversation, Message, Preset
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_the_new_chat_page_offers_everyones_presets_and_only_ones_own(signed_in, user) -> None:
    DeploymentFactory(is_default=True)
    Preset.objects.create(name="Translator", description="Into plain English")
    Preset.objects.create(name="My reviewer", owner=user, instructions="Review code.")
    Preset.objects.create(name="Their secret", owner=UserFactory(), instructions="Hidden.")

    html = signed_in.get("/").content.decode()

    assert "Translator" in html
    assert "Into plain English" in html
    assert "My reviewer" in html
    assert "Their secret" not in html
    assert html.index("Translator") < html.index("My reviewer"), "everyone's come first"


def test_picking_a_preset_fills_in_its_deployment_and_instructions(signed_in) -> None:
    DeploymentFactory(name="Default", is_default=True, default_instructions="Be generic.")
    legal = DeploymentFactory(name="Legal model")
    preset = Preset.objects.create(
        name="Contract checker", deployment=legal, instructions="Check contracts."
    )

    response = signed_in.get("/", {"preset": preset.pk})

    form = response.context["form"]
    assert form.initial["deployment"] == legal.pk
    assert form.initial["instructions"] == "Check contracts."
    html = response.content.decode()
    assert "Starting from <strong>Contract checker</strong>" in html
    assert "Be generic." not in html


@pytest.mark.django_db(transaction=True)
async def test_a_chat_sent_from_a_picked_preset_has_its_deployment_and_instructions(
    user, amake_sim_deployment
) -> None:
    await amake_sim_deployment(name="Default", is_default=True)
    legal = await amake_sim_deployment(name="Legal", is_default=False)
    preset = await Preset.objects.acreate(
        name="Contracts", deployment=legal, instructions="Be precise."
    )
    client = AsyncClient()
    await client.aforce_login(user)
    form = (await client.get("/", {"preset": preset.pk})).context["form"]

    await client.post(
        reverse("conversation_create"),
        {
            "deployment": form.initial["deployment"],
            "instructions": form.initial["instructions"],
            "text": "Check clause 4",
        },
    )

    conversation = await Conversation.objects.aget(owner=user)
    assert conversation.deployment_id == legal.pk
    assert conversation.instructions == "Be precise."
    for _ in range(200):
        reply = await Message.objects.filter(conversation=conversation, role="assistant").afirst()
        if reply and not reply.in_flight:
            break
        await asyncio.sleep(0.02)


def test_a_preset_on_a_disabled_deployment_starts_on_the_default(signed_in) -> None:
    default = DeploymentFactory(name="Default", is_default=True)
    off = DeploymentFactory(name="Off", enabled=False)
    preset = Preset.objects.create(name="Old", deployment=off, instructions="Still useful.")

    form = signed_in.get("/", {"preset": preset.pk}).context["form"]

    assert form.initial["deployment"] == default.pk
    assert form.initial["instructions"] == "Still useful."


def test_another_persons_preset_cannot_be_picked(signed_in) -> None:
    theirs = Preset.objects.create(name="Theirs", owner=UserFactory(), instructions="Private.")
    html = signed_in.get("/", {"preset": theirs.pk}).content.decode()
    assert "Private." not in html
    assert "Starting from" not in html


def test_saving_a_conversations_instructions_as_a_personal_preset(signed_in, user) -> None:
    deployment = DeploymentFactory()
    conversation = Conversation.objects.create(
        owner=user, deployment=deployment, instructions="Answer as a pirate."
    )
    page = signed_in.get(reverse("conversation_detail", args=[conversation.pk]))
    assert "Save as preset" in page.content.decode()

    response = signed_in.post(
        reverse("preset_save", args=[conversation.pk]), {"name": "Pirate", "description": "Arr"}
    )

    assert response.status_code == 302
    preset = Preset.objects.get()
    assert (preset.owner, preset.name, preset.description) == (user, "Pirate", "Arr")
    assert (preset.deployment, preset.instructions) == (deployment, "Answer as a pirate.")


def test_a_preset_needs_a_name(signed_in, user) -> None:
    conversation = Conversation.objects.create(owner=user, instructions="Something.")
    signed_in.post(reverse("preset_save", args=[conversation.pk]), {"name": "  "})
    assert not Preset.objects.exists()


def test_another_persons_conversation_cannot_be_saved_as_a_preset(signed_in) -> None:
    theirs = Conversation.objects.create(owner=UserFactory(), instructions="Their prompt.")
    response = signed_in.post(reverse("preset_save", args=[theirs.pk]), {"name": "Stolen"})
    assert response.status_code == 404
    assert not Preset.objects.exists()


def test_one_deletes_ones_own_preset_only(signed_in, user) -> None:
    mine = Preset.objects.create(name="Mine", owner=user)
    theirs = Preset.objects.create(name="Theirs", owner=UserFactory())
    everyones = Preset.objects.create(name="Everyone's")

    deleted = signed_in.post(
        reverse("preset_delete", args=[mine.pk]), headers={"HX-Request": "true"}
    )
    refused = [
        signed_in.post(reverse("preset_delete", args=[preset.pk])).status_code
        for preset in (theirs, everyones)
    ]

    assert deleted.status_code == 200
    assert refused == [404, 404]
    assert set(Preset.objects.values_list("name", flat=True)) == {"Theirs", "Everyone's"}


def test_the_new_chat_page_costs_the_same_queries_however_many_presets(
    signed_in, user, django_assert_max_num_queries
) -> None:
    DeploymentFactory(is_default=True)
    Preset.objects.create(name="One", deployment=DeploymentFactory())
    with django_assert_max_num_queries(12) as few:
        signed_in.get("/")
    for n in range(10):
        Preset.objects.create(name=f"Shared {n}", deployment=DeploymentFactory())
        Preset.objects.create(name=f"Own {n}", owner=user, deployment=DeploymentFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        signed_in.get("/")


@pytest.fixture
def admin_client(client: Client, staff_user) -> Client:
    client.force_login(staff_user)
    return client


def test_admins_define_assistants_for_everyone(admin_client) -> None:
    deployment = DeploymentFactory()
    response = admin_client.post(
        reverse("admin:chat_preset_add"),
        {
            "name": "Summariser",
            "description": "Short summaries",
            "deployment": deployment.pk,
            "instructions": "Summarise in three bullets.",
        },
    )
    assert response.status_code == 302
    preset = Preset.objects.get()
    assert preset.owner is None
    assert preset.deployment == deployment


def test_the_admin_lists_no_personal_presets(admin_client) -> None:
    Preset.objects.create(name="Shared helper")
    personal = Preset.objects.create(
        name="Personal secret", owner=UserFactory(), instructions="Private prompt."
    )
    html = admin_client.get(reverse("admin:chat_preset_changelist")).content.decode()
    assert "Shared helper" in html
    assert "Personal secret" not in html
    change = admin_client.get(reverse("admin:chat_preset_change", args=[personal.pk]))
    assert change.status_code == 302, "the admin does not find it (redirects to the list)"
