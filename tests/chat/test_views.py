"""The chat pages over HTTP: the sidebar, new chats, rename, delete, search, the no-JS fallback."""

import asyncio
import uuid

import pytest
from django.test import AsyncClient, Client
from django.urls import reverse

from chat.models import Conversation, Message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def make_conversation(owner, title: str = "", **fields) -> Conversation:
    return Conversation.objects.create(owner=owner, title=title, **fields)


def test_home_offers_enabled_deployments_with_the_default_first(
    signed_in, make_sim_deployment
) -> None:
    make_sim_deployment(name="Zeta", is_default=True, default_instructions="Be brief.")
    make_sim_deployment(name="Alpha")
    make_sim_deployment(name="Off", enabled=False)
    html = signed_in.get("/").content.decode()
    assert html.index(">Zeta<") < html.index(">Alpha<")
    assert ">Off<" not in html
    assert "Be brief." in html, "the default deployment's instructions are offered"


def test_home_explains_when_no_model_exists(signed_in) -> None:
    html = signed_in.get("/").content.decode()
    assert "No model is available yet" in html


def test_sidebar_lists_own_conversations_newest_first_and_paginates(
    signed_in, user, settings
) -> None:
    settings.CHAT_CONVERSATIONS_PER_PAGE = 3
    stranger = UserFactory()
    make_conversation(stranger, "Not mine")
    for i in range(5):
        make_conversation(user, f"Chat {i}")
    html = signed_in.get("/").content.decode()
    assert "Not mine" not in html
    assert html.index("Chat 4") < html.index("Chat 3") < html.index("Chat 2")
    assert "Chat 1" not in html
    assert "Show older conversations" in html
    more = signed_in.get(reverse("conversation_list"), {"page": 2}).content.decode()
    assert "Chat 1" in more
    assert "Chat 0" in more
    assert "Chat 4" not in more


def test_search_covers_titles_and_message_text(signed_in, user) -> None:
    by_title = make_conversation(user, "Quarterly budget")
    by_text = make_conversation(user, "Something else")
    Message.objects.create(conversation=by_text, role="user", text="where is the BUDGET sheet")
    make_conversation(user, "Unrelated")
    stranger_chat = make_conversation(UserFactory(), "budget of a stranger")
    html = signed_in.get(reverse("conversation_list"), {"q": "budget"}).content.decode()
    assert f"conversation-{by_title.pk}" in html
    assert f"conversation-{by_text.pk}" in html
    assert "Unrelated" not in html
    assert f"conversation-{stranger_chat.pk}" not in html
    nothing = signed_in.get(reverse("conversation_list"), {"q": "zebra"}).content.decode()
    assert "No conversations match." in nothing


def test_rename_in_place(signed_in, user) -> None:
    conversation = make_conversation(user, "Old")
    url = reverse("conversation_rename", args=[conversation.pk])
    form = signed_in.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'name="title"' in form
    assert 'value="Old"' in form
    response = signed_in.post(url, {"title": "  New name  "}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "New name" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "New name"


def test_rename_refuses_an_empty_title(signed_in, user) -> None:
    conversation = make_conversation(user, "Keep me")
    url = reverse("conversation_rename", args=[conversation.pk])
    response = signed_in.post(url, {"title": "   "}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "A title cannot be empty." in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "Keep me"


def test_delete_removes_the_conversation_and_its_messages(signed_in, user) -> None:
    conversation = make_conversation(user, "Bye")
    Message.objects.create(conversation=conversation, role="user", text="hello")
    response = signed_in.post(reverse("conversation_delete", args=[conversation.pk]))
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_deleting_the_open_conversation_with_htmx_goes_home(signed_in, user) -> None:
    conversation = make_conversation(user, "Open one")
    response = signed_in.post(
        reverse("conversation_delete", args=[conversation.pk]),
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver/c/{conversation.pk}/",
        },
    )
    assert response["HX-Redirect"] == "/"


def test_conversation_page_shows_messages_policy_and_a_fresh_client_id(
    signed_in, user, sim_deployment
) -> None:
    conversation = make_conversation(user, "Shown", deployment=sim_deployment)
    Message.objects.create(conversation=conversation, role="user", text="<b>not bold</b>")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        text="**bold**",
        html="<p><strong>bold</strong></p>",
    )
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html, "user text is escaped"
    assert "<strong>bold</strong>" in html
    assert "Azure keeps a copy for 30 days" in html
    assert f'ws-connect="/ws/conversations/{conversation.pk}/"' in html
    assert 'dir="auto"' in html
    client_id = html.split('name="client_id" value="')[1].split('"')[0]
    assert uuid.UUID(client_id)


def test_stateless_policy_is_shown(signed_in, user, make_sim_deployment) -> None:
    deployment = make_sim_deployment(store_policy="stateless")
    conversation = make_conversation(user, deployment=deployment)
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert "Nothing kept on Azure" in html


@pytest.mark.django_db(transaction=True)
async def test_new_chat_without_javascript_saves_and_answers(user, sim_deployment) -> None:
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(
        reverse("conversation_create"),
        {"deployment": sim_deployment.pk, "instructions": "Be kind.", "text": "Hi there"},
    )
    assert response.status_code == 302
    conversation = await Conversation.objects.aget(owner=user)
    assert response["Location"] == f"/c/{conversation.pk}/"
    assert conversation.title == "Hi there"
    assert conversation.instructions == "Be kind."
    for _ in range(200):
        reply = await Message.objects.filter(conversation=conversation, role="assistant").afirst()
        if reply and not reply.in_flight:
            break
        await asyncio.sleep(0.02)
    assert reply.status == Message.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
async def test_fallback_send_keeps_text_on_a_refusal(user, sim_deployment, settings) -> None:
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    client = AsyncClient()
    await client.aforce_login(user)
    conversation = await Conversation.objects.acreate(owner=user, deployment=sim_deployment)
    response = await client.post(
        reverse("message_create", args=[conversation.pk]), {"text": "far too long a message"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "That message is too long" in html
    assert ">far too long a message</textarea>" in html, "the draft comes back"
    assert not await Message.objects.filter(conversation=conversation).aexists()


def test_new_chat_with_bad_input_keeps_everything(signed_in, sim_deployment) -> None:
    response = signed_in.post(
        reverse("conversation_create"),
        {"deployment": sim_deployment.pk, "instructions": "Keep these", "text": "   "},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)], "a reload does not post again"
    html = response.content.decode()
    assert "Type a message before sending." in html
    assert "Keep these" in html
    assert not Conversation.objects.exists()


def test_a_refused_first_message_leaves_no_empty_conversation(
    signed_in, sim_deployment, settings
) -> None:
    settings.CHAT_RATE_LIMIT = 0
    response = signed_in.post(
        reverse("conversation_create"),
        {"deployment": sim_deployment.pk, "instructions": "Keep these", "text": "My question"},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)], "a reload does not post again"
    html = response.content.decode()
    assert "You are sending messages faster than allowed" in html
    assert ">My question</textarea>" in html, "the text comes back in the composer"
    assert "Keep these" in html
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    again = signed_in.get(reverse("home")).content.decode()
    assert "My question" not in again, "a later visit starts afresh"


# Isolation: user B reaches none of user A's conversation, and learns nothing from trying.


@pytest.fixture
def strangers_conversation():
    owner = UserFactory()
    conversation = make_conversation(owner, "A's secret plans")
    Message.objects.create(conversation=conversation, role="user", text="secret text")
    return conversation


@pytest.mark.parametrize(
    ("method", "name", "extra"),
    [
        ("get", "conversation_detail", {}),
        ("get", "conversation_rename", {}),
        ("post", "conversation_rename", {"title": "hijacked"}),
        ("post", "conversation_delete", {}),
        ("post", "message_create", {"text": "hello"}),
        ("post", "reply_stop", {}),
    ],
)
def test_another_users_conversation_is_404(
    signed_in, strangers_conversation, method, name, extra
) -> None:
    url = reverse(name, args=[strangers_conversation.pk])
    response = getattr(signed_in, method)(url, extra)
    assert response.status_code == 404
    assert "secret" not in response.content.decode()
    strangers_conversation.refresh_from_db()
    assert strangers_conversation.title == "A's secret plans"
    assert strangers_conversation.messages.count() == 1


def test_another_users_retry_is_404(signed_in, strangers_conversation) -> None:
    reply = Message.objects.create(
        conversation=strangers_conversation, role="assistant", status="failed", error="x"
    )
    url = reverse("message_retry", args=[strangers_conversation.pk, reply.pk])
    assert signed_in.post(url).status_code == 404


def test_another_users_conversations_are_not_listed_or_searchable(
    signed_in, strangers_conversation
) -> None:
    listed = signed_in.get(reverse("conversation_list")).content.decode()
    searched = signed_in.get(reverse("conversation_list"), {"q": "secret"}).content.decode()
    home = signed_in.get("/").content.decode()
    for html in (listed, searched, home):
        assert "secret plans" not in html
        assert f"conversation-{strangers_conversation.pk}" not in html


def test_a_long_conversation_opens_on_its_latest_messages(signed_in, user, settings) -> None:
    settings.CHAT_MESSAGES_PER_PAGE = 3
    conversation = make_conversation(user, "Long")
    messages = Message.objects.bulk_create(
        [Message(conversation=conversation, role="user", text=f"number {i}") for i in range(7)]
    )
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert [f"number {i}" in html for i in range(7)] == [False] * 4 + [True] * 3
    assert "Show earlier messages" in html

    url = reverse("message_list", args=[conversation.pk])
    earlier = signed_in.get(url, {"before": messages[4].pk}).content.decode()
    assert [f"number {i}" in earlier for i in range(7)] == [False, True, True, True] + [False] * 3
    assert "Show earlier messages" in earlier
    first = signed_in.get(url, {"before": messages[1].pk}).content.decode()
    assert "number 0" in first
    assert "Show earlier messages" not in first


def test_earlier_messages_of_another_user_are_404(signed_in) -> None:
    conversation = make_conversation(UserFactory(), "Not yours")
    Message.objects.create(conversation=conversation, role="user", text="private")
    response = signed_in.get(reverse("message_list", args=[conversation.pk]), {"before": 10**6})
    assert response.status_code == 404


def test_chat_messages_are_not_mistaken_for_flash_messages(signed_in, user) -> None:
    conversation = make_conversation(user, "Flash")
    Message.objects.create(conversation=conversation, role="user", text="a chat message")
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert html.count("a chat message") == 1
    assert 'class="alert' not in html


def test_flash_messages_show_after_deleting(signed_in, user) -> None:
    conversation = make_conversation(user, "Bye")
    response = signed_in.post(reverse("conversation_delete", args=[conversation.pk]), follow=True)
    assert "Conversation deleted." in response.content.decode()
