"""Pinned conversations on top of the sidebar; archived ones apart, found by search, restored."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def make(owner, title, minutes_ago=0, **fields) -> Conversation:
    when = timezone.now() - timezone.timedelta(minutes=minutes_ago)
    return Conversation.objects.create(owner=owner, title=title, updated_at=when, **fields)


def sidebar_titles(html: str, *titles: str) -> list[str]:
    return sorted((t for t in titles if t in html), key=html.index)


def test_a_pinned_conversation_stays_on_top_of_the_list(signed_in, user) -> None:
    old = make(user, "Old one", minutes_ago=60)
    make(user, "Newer one", minutes_ago=1)

    response = signed_in.post(
        reverse("conversation_pin", args=[old.pk]), {"pinned": "1"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert sidebar_titles(html, "Old one", "Newer one") == ["Old one", "Newer one"]
    assert "Unpin “Old one”" in html
    old.refresh_from_db()
    assert old.pinned
    page = signed_in.get("/").content.decode()
    assert sidebar_titles(page, "Old one", "Newer one") == ["Old one", "Newer one"]


def test_unpinning_puts_it_back_in_time_order(signed_in, user) -> None:
    old = make(user, "Old one", minutes_ago=60, pinned=True)
    make(user, "Newer one", minutes_ago=1)

    html = signed_in.post(
        reverse("conversation_pin", args=[old.pk]), {"pinned": "0"}, headers={"HX-Request": "true"}
    ).content.decode()

    assert sidebar_titles(html, "Old one", "Newer one") == ["Newer one", "Old one"]


def test_an_archived_conversation_leaves_the_list_for_the_archived_view(signed_in, user) -> None:
    done = make(user, "Finished project")
    make(user, "Ongoing")

    html = signed_in.post(
        reverse("conversation_archive", args=[done.pk]),
        {"archived": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()

    assert "Finished project" not in html
    assert "Ongoing" in html
    assert "Finished project" not in signed_in.get("/").content.decode()
    archived = signed_in.get(reverse("conversation_list"), {"view": "archived"}).content.decode()
    assert "Finished project" in archived
    assert "Ongoing" not in archived
    assert "Unarchive “Finished project”" in archived


def test_search_finds_archived_conversations_and_says_so(signed_in, user) -> None:
    make(user, "Tax return 2024", archived=True)
    make(user, "Tax questions")

    html = signed_in.get(reverse("conversation_list"), {"q": "tax"}).content.decode()

    assert "Tax return 2024" in html
    assert "Tax questions" in html
    assert html.count("archived-badge") == 1


def test_unarchiving_from_the_archived_view_brings_it_back(signed_in, user) -> None:
    done = make(user, "Finished project", archived=True)

    html = signed_in.post(
        reverse("conversation_archive", args=[done.pk]),
        {"archived": "0", "view": "archived"},
        headers={"HX-Request": "true"},
    ).content.decode()

    assert "Finished project" not in html, "the archived view no longer holds it"
    assert "Finished project" in signed_in.get("/").content.decode()


def test_unarchive_without_javascript_returns_to_the_conversation(signed_in, user) -> None:
    done = make(user, "Finished project", archived=True)
    page = signed_in.get(reverse("conversation_detail", args=[done.pk])).content.decode()
    assert "Unarchive" in page

    response = signed_in.post(reverse("conversation_archive", args=[done.pk]), {"archived": "0"})

    assert response.status_code == 302
    done.refresh_from_db()
    assert not done.archived


def test_another_persons_conversation_cannot_be_pinned_or_archived(signed_in) -> None:
    theirs = make(UserFactory(), "Not mine")
    pin = signed_in.post(reverse("conversation_pin", args=[theirs.pk]), {"pinned": "1"})
    archive = signed_in.post(reverse("conversation_archive", args=[theirs.pk]), {"archived": "1"})
    assert (pin.status_code, archive.status_code) == (404, 404)
    theirs.refresh_from_db()
    assert not theirs.pinned
    assert not theirs.archived


def test_pin_and_archive_are_posts_only(signed_in, user) -> None:
    conversation = make(user, "Mine")
    assert signed_in.get(reverse("conversation_pin", args=[conversation.pk])).status_code == 405


def test_the_sidebar_costs_the_same_queries_however_many_conversations(
    signed_in, user, django_assert_max_num_queries, settings
) -> None:
    settings.CHAT_CONVERSATIONS_PER_PAGE = 50
    for n in range(3):
        make(user, f"Chat {n}", pinned=n == 0)
    with django_assert_max_num_queries(10) as few:
        signed_in.get("/")
    for n in range(3, 40):
        make(user, f"Chat {n}", pinned=n % 5 == 0, archived=n % 7 == 0)
    with django_assert_max_num_queries(len(few.captured_queries)):
        signed_in.get("/")
    with django_assert_max_num_queries(len(few.captured_queries)):
        signed_in.get(reverse("conversation_list"), {"view": "archived"})
