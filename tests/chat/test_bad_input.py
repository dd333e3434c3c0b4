"""Input the app cannot take gets an answer in words: oversize bodies, broken characters."""

import pytest
from django.test import Client
from django.urls import reverse

from chat.forms import MessageForm, NewConversationForm, RenameForm
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db

TEN_MB = "x" * 10_000_000


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_a_ten_megabyte_new_chat_gets_a_page_with_the_limits(signed_in, sim_deployment) -> None:
    response = signed_in.post(
        reverse("conversation_create"),
        {"deployment": sim_deployment.pk, "text": TEN_MB},
        HTTP_REFERER="http://testserver/",
    )
    assert response.status_code == 413
    html = response.content.decode()
    assert ">That was too long to send</h1>" in html
    assert "at most 32,000 characters" in html
    assert "2.5\xa0MB at most" in html
    assert "nothing of it was saved" in html
    assert 'href="http://testserver/"' in html
    assert not Conversation.objects.exists()


def test_a_ten_megabyte_message_over_htmx_gets_a_fragment(signed_in, user) -> None:
    conversation = Conversation.objects.create(owner=user)
    response = signed_in.post(
        reverse("message_create", args=[conversation.pk]),
        {"text": TEN_MB},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 413
    html = response.content.decode()
    assert html.strip().startswith('<div class="alert alert-error" role="alert"')
    assert "<html" not in html
    assert "at most 32,000 characters" in html
    assert not Message.objects.exists()


def test_a_back_link_never_leads_off_the_site(signed_in, user) -> None:
    conversation = Conversation.objects.create(owner=user)
    response = signed_in.post(
        reverse("message_create", args=[conversation.pk]),
        {"text": TEN_MB},
        HTTP_REFERER="https://elsewhere.example/phish",
    )
    assert 'href="/"' in response.content.decode()


def test_other_bad_requests_keep_djangos_answer(client: Client) -> None:
    response = client.get("/", HTTP_HOST="not-our-host.example")
    assert response.status_code == 400
    assert "too long" not in response.content.decode()


def test_a_long_text_comes_back_with_the_limit(signed_in, user, settings) -> None:
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    conversation = Conversation.objects.create(owner=user)
    response = signed_in.post(
        reverse("message_create", args=[conversation.pk]), {"text": "far too long a message"}
    )
    html = response.content.decode()
    assert "at most 10 characters" in html
    assert ">far too long a message</textarea>" in html


@pytest.mark.parametrize(
    ("form", "data", "field"),
    [
        (MessageForm, {"text": "half a pair \ud83d here"}, "text"),
        (NewConversationForm, {"text": "hi", "instructions": "be \udc00 kind"}, "instructions"),
        (RenameForm, {"title": "title \ud800"}, "title"),
    ],
)
def test_a_lone_surrogate_is_refused_with_a_clear_error(form, data, field, user) -> None:
    bound = form(data, user=user) if form is NewConversationForm else form(data)
    assert not bound.is_valid()
    assert "broken character" in " ".join(bound.errors[field])


def test_a_whole_emoji_is_fine() -> None:
    assert MessageForm({"text": "thanks \U0001f44d"}).is_valid()
