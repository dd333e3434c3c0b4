"""The sidebar search: only the signed-in person's own messages, cleaned input, indexed."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chat.forms import SearchForm
from chat.models import Conversation, Message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram indexes exist on PostgreSQL only"
)


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_another_users_matching_message_never_shows(signed_in, user) -> None:
    mine = Conversation.objects.create(owner=user, title="Mine")
    Message.objects.create(conversation=mine, role="user", text="the budget for March")
    theirs = Conversation.objects.create(owner=UserFactory(), title="Theirs")
    Message.objects.create(conversation=theirs, role="user", text="my budget, not yours")

    html = signed_in.get(reverse("conversation_list"), {"q": "budget"}).content.decode()
    assert f"conversation-{mine.pk}" in html
    assert f"conversation-{theirs.pk}" not in html
    assert "Theirs" not in html


def test_the_message_search_itself_reads_only_the_owners_messages(signed_in, user) -> None:
    with CaptureQueriesContext(connection) as captured:
        signed_in.get(reverse("conversation_list"), {"q": "budget"})
    searches = [q["sql"] for q in captured.captured_queries if "chat_message" in q["sql"]]
    assert searches
    for sql in searches:
        # The part of the statement that reads messages, up to the end of its subquery.
        message_part = sql[sql.index('FROM "chat_message"') :]
        assert re.search(rf'"owner_id" = {user.pk}\b', message_part), sql


@pytest.mark.parametrize("query", ["bud\x00get", "\x00budget\x00"])
def test_characters_no_text_can_hold_are_dropped_from_a_search(signed_in, user, query) -> None:
    chat = Conversation.objects.create(owner=user, title="Quarterly budget")
    response = signed_in.get(reverse("conversation_list"), {"q": query})
    assert response.status_code == 200
    assert f"conversation-{chat.pk}" in response.content.decode()


def test_a_nul_in_the_home_page_search_is_no_error(signed_in) -> None:
    assert signed_in.get("/?q=%00").status_code == 200


def test_the_search_box_drops_lone_surrogates_and_keeps_200_characters() -> None:
    # URLs cannot carry a lone surrogate (they are UTF-8); the field cleans whatever it is given.
    assert SearchForm({"q": " bud\ud800get "}).query() == "budget"
    assert len(SearchForm({"q": "x" * 500}).query()) == 200


def explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@on_postgresql
def test_on_postgresql_the_search_uses_the_trigram_index(user) -> None:
    """The index is on UPPER(text) because that is what ``icontains`` compares: a plain index on
    the column would never serve the query. A long conversation and a rare word: reading the
    conversation's messages one by one costs more than asking the index."""
    chat = Conversation.objects.create(owner=user, title="Long one")
    Message.objects.bulk_create(
        Message(conversation=chat, role="user", text=f"ordinary words number {n} here")
        for n in range(10_000)
    )
    Message.objects.create(conversation=chat, role="user", text="where is the zebrafish memo")
    with connection.cursor() as cursor:
        # Fresh rows wait in GIN's pending list until a vacuum; scanning that list is what
        # would make the planner skip the index here, never in a database that has been running.
        cursor.execute("SELECT gin_clean_pending_list('chat_message_text_trgm'::regclass)")
        cursor.execute("ANALYZE chat_message; ANALYZE chat_conversation")

    found = Conversation.objects.search(owner=user, query="zebrafish")
    assert list(found) == [chat]
    plan = explain(found.only("pk", "title")[:30])
    assert "Bitmap Index Scan on chat_message_text_trgm" in plan, plan
    assert f"owner_id = {user.pk}" in plan[plan.rindex("SubPlan") :], "only the owner's"
