"""Exports: one conversation as Markdown or JSON, all of one's conversations as one JSON file."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from chat.exports import FORMAT_VERSION, conversation_export_messages
from chat.models import Conversation, Message
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def conversation_with_turn(owner, title="CSV in Python", deployment=None) -> Conversation:
    deployment = deployment or DeploymentFactory(name="GPT-4.1 Sweden", deployment_name="gpt41")
    conversation = Conversation.objects.create(
        owner=owner, title=title, deployment=deployment, instructions="Answer briefly."
    )
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text="How do I read a CSV?"
    )
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text="Use `csv.reader`.",
        reply_to=question,
        deployment=deployment,
        response_id="resp_abc123",
        input_tokens=12,
        output_tokens=5,
        reasoning_tokens=0,
        cached_tokens=0,
        first_token_ms=40,
        duration_ms=300,
    )
    return conversation


def test_json_export_holds_the_messages_in_order_with_models_usage_and_response_ids(
    signed_in, user
) -> None:
    conversation = conversation_with_turn(user)
    response = signed_in.get(reverse("conversation_export", args=[conversation.pk, "json"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="conversation-{conversation.pk}-csv-in-python.json"'
    )
    document = json.loads(response.content)
    assert document["format_version"] == FORMAT_VERSION
    [exported] = document["conversations"]
    assert exported["title"] == "CSV in Python"
    assert exported["instructions"] == "Answer briefly."
    question, answer = exported["messages"]
    assert (question["role"], question["text"]) == ("user", "How do I read a CSV?")
    assert answer["reply_to"] == question["id"]
    assert answer["deployment"] == {
        "name": "GPT-4.1 Sweden",
        "deployment_name": "gpt41",
        "model": "gpt-4.1",
    }
    assert answer["response_id"] == "resp_abc123"
    assert answer["usage"] == {
        "input_tokens": 12,
        "output_tokens": 5,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
    }
    assert answer["latency_ms"] == {"first_token": 40, "total": 300}
    assert answer["created_at"].startswith(str(conversation.created_at.year))


def test_markdown_export_reads_as_the_conversation(signed_in, user) -> None:
    conversation = conversation_with_turn(user)
    response = signed_in.get(reverse("conversation_export", args=[conversation.pk, "md"]))

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; ")
    text = response.content.decode()
    assert text.startswith("# CSV in Python\n")
    assert "GPT-4.1 Sweden (gpt-4.1, deployment `gpt41`)" in text
    assert "Answer briefly." in text
    assert text.index("## You") < text.index("How do I read a CSV?") < text.index("## GPT-4.1")
    assert "Use `csv.reader`." in text
    assert "*12 input · 5 output tokens*" in text
    assert "resp_abc123" in text


def test_a_title_with_unsafe_characters_gives_a_safe_filename(signed_in, user) -> None:
    conversation = conversation_with_turn(user, title='../../etc/passwd"\r\nX-Evil: 1 ünï')
    response = signed_in.get(reverse("conversation_export", args=[conversation.pk, "md"]))

    disposition = response["Content-Disposition"]
    assert disposition == (
        f'attachment; filename="conversation-{conversation.pk}-etcpasswd-x-evil-1-uni.md"'
    )
    assert "X-Evil" not in response.headers


def test_another_persons_conversation_cannot_be_exported(signed_in) -> None:
    theirs = conversation_with_turn(UserFactory())
    for extension in ("md", "json"):
        url = reverse("conversation_export", args=[theirs.pk, extension])
        assert signed_in.get(url).status_code == 404


def test_an_unknown_export_format_is_not_found(signed_in, user) -> None:
    conversation = conversation_with_turn(user)
    url = reverse("conversation_export", args=[conversation.pk, "html"])
    assert signed_in.get(url).status_code == 404


def test_download_all_holds_every_own_conversation_archived_included_and_nobody_elses(
    signed_in, user, django_assert_max_num_queries
) -> None:
    deployment = DeploymentFactory()
    for n in range(6):
        conversation_with_turn(user, title=f"Mine {n}", deployment=deployment)
    Conversation.objects.filter(title="Mine 0").update(archived=True)
    conversation_with_turn(UserFactory(), title="Not mine", deployment=deployment)

    # Session, user, conversations, messages: the same however many conversations there are.
    with django_assert_max_num_queries(5):
        response = signed_in.get(reverse("account_export"))

    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    document = json.loads(response.content)
    titles = {c["title"]: c for c in document["conversations"]}
    assert set(titles) == {f"Mine {n}" for n in range(6)}
    assert titles["Mine 0"]["archived"] is True
    assert all(len(c["messages"]) == 2 for c in document["conversations"])


def test_the_export_selector_gives_the_conversations_messages_in_order(user) -> None:
    deployment = DeploymentFactory()
    conversation = conversation_with_turn(user, deployment=deployment)
    conversation_with_turn(user, deployment=deployment)
    exported = list(conversation_export_messages(conversation))
    assert [m.role for m in exported] == ["user", "assistant"]
    assert {m.conversation_id for m in exported} == {conversation.pk}


def test_export_buttons_are_on_the_conversation_page_and_download_all_in_the_sidebar(
    signed_in, user
) -> None:
    conversation = conversation_with_turn(user)
    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()
    assert reverse("conversation_export", args=[conversation.pk, "md"]) in html
    assert reverse("conversation_export", args=[conversation.pk, "json"]) in html
    assert reverse("account_export") in html


def test_exports_follow_the_branch_shown(signed_in, user) -> None:
    conversation = Conversation.objects.create(owner=user, title="Two answers")
    question = Message.objects.create(conversation=conversation, role="user", text="Question")
    first = Message.objects.create(
        conversation=conversation, role="assistant", text="First answer", parent=question
    )
    second = Message.objects.create(
        conversation=conversation, role="assistant", text="Second answer", parent=question
    )
    conversation.current_leaf = first
    conversation.save()
    assert [m.text for m in conversation_export_messages(conversation)] == [
        "Question",
        "First answer",
    ]

    conversation.current_leaf = second
    conversation.save()
    markdown = signed_in.get(f"/c/{conversation.pk}/export.md").content.decode()
    assert "Second answer" in markdown
    assert "First answer" not in markdown
    everything = signed_in.get("/c/export.json").json()
    (exported,) = everything["conversations"]
    assert [m["text"] for m in exported["messages"]] == ["Question", "Second answer"]
