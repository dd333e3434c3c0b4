"""Refusals in words: the admin for people without staff rights, missing pages, and htmx
requests from a page whose session has ended."""

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Conversation

pytestmark = pytest.mark.django_db


def test_a_non_staff_person_at_the_admin_is_told_it_needs_administrator_access(
    client: Client, user
) -> None:
    client.force_login(user)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    html = response.content.decode()
    assert "You need administrator access" in html
    assert f'href="{reverse("home")}"' in html, "a way back to the chats"
    assert 'rel="stylesheet"' in html, "the site's own styled page"


def test_a_missing_page_is_a_styled_page_with_a_way_back(client: Client, user) -> None:
    client.force_login(user)
    response = client.get("/c/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Nothing here" in html
    assert f'href="{reverse("home")}"' in html


def test_a_signed_out_htmx_request_sends_the_whole_page_to_sign_in(client: Client, user) -> None:
    conversation = Conversation.objects.create(owner=user, title="Mine")
    response = client.get(
        reverse("conversation_rename", args=[conversation.pk]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver/c/{conversation.pk}/",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/account/sign-in/?next=/c/{conversation.pk}/"
    assert response.content == b"", "nothing to swap into the sidebar"


def test_a_foreign_current_url_is_not_where_sign_in_returns(client: Client) -> None:
    response = client.post(
        reverse("conversation_list"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="https://evil.example/phish",
    )
    assert response["HX-Redirect"] == "/account/sign-in/?next=/"


def test_a_signed_out_page_load_still_redirects(client: Client) -> None:
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == "/account/sign-in/?next=/"
