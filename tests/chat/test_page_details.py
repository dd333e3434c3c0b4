"""Small things the chat pages must get right: a rename seen at once, what Azure keeps shown
where the model is picked, no template text leaking onto a page."""

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Conversation, Deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def _rename(client: Client, conversation: Conversation, *, page: str) -> str:
    response = client.post(
        reverse("conversation_rename", args=[conversation.pk]),
        {"title": "Budget 2027"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )
    assert response.status_code == 200
    return response.content.decode()


def test_renaming_the_open_conversation_updates_its_heading_and_tab_title(signed_in, user) -> None:
    conversation = Conversation.objects.create(owner=user, title="Old name")
    html = _rename(signed_in, conversation, page=f"/c/{conversation.pk}/")
    heading = '<h1 id="chat-title" class="chat-title" dir="auto" hx-swap-oob="true">'
    assert f"{heading}Budget 2027</h1>" in html
    assert "<title>Budget 2027 · Chat</title>" in html
    assert 'class="conversation-item current"' in html, "the item stays marked as open"


def test_renaming_another_conversation_leaves_the_heading_alone(signed_in, user) -> None:
    shown = Conversation.objects.create(owner=user, title="Shown")
    other = Conversation.objects.create(owner=user, title="Other")
    html = _rename(signed_in, other, page=f"/c/{shown.pk}/")
    assert "Budget 2027" in html
    assert "chat-title" not in html
    assert "<title>" not in html


def test_the_picker_says_what_azure_keeps_for_each_model(signed_in, make_sim_deployment) -> None:
    make_sim_deployment(name="Kept", is_default=True, remote_retention_hours=1)
    make_sim_deployment(name="Private", store_policy=Deployment.StorePolicy.STATELESS)
    html = signed_in.get(reverse("home")).content.decode()
    assert 'data-retention="Azure keeps a copy for 1 hour"' in html
    assert 'data-retention="Nothing kept on Azure"' in html
    assert 'aria-describedby="store-note"' in html
    assert 'id="store-note"' in html
    note = html[html.index('id="store-note"') :]
    assert note[: note.index("</span>")].endswith(">Azure keeps a copy for 1 hour")


def test_no_template_comment_leaks_onto_a_page(signed_in, sim_deployment) -> None:
    # Django's {# #} ends at the line's end; a longer one shows as text at the top of the page.
    html = signed_in.get(reverse("home")).content.decode()
    assert "{#" not in html
    assert "#}" not in html
