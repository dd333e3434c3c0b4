"""Feedback on replies: a person rates a reply; administrators read ratings, never the words of
a conversation that was not shared with them."""

import pytest
from django.test import Client
from django.urls import reverse

from chat.feedback import feedback_give, feedback_report
from chat.models import Conversation, Feedback, Message
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_QUESTION = "What is our secret merger codename?"
SECRET_ANSWER = "The codename is BLUEBIRD."
SECRET_TITLE = "Merger planning"


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def turn(owner, deployment=None) -> tuple[Conversation, Message]:
    deployment = deployment or DeploymentFactory()
    conversation = Conversation.objects.create(
        owner=owner, title=SECRET_TITLE, deployment=deployment, instructions="Be secret."
    )
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text=SECRET_QUESTION
    )
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=SECRET_ANSWER,
        html=f"<p>{SECRET_ANSWER}</p>",
        reply_to=question,
        deployment=deployment,
    )
    return conversation, reply


def rate(client, reply, **data):
    url = reverse("message_feedback", args=[reply.conversation_id, reply.pk])
    return client.post(url, data, headers={"HX-Request": "true"})


def test_a_thumb_records_the_rating_and_offers_a_comment(signed_in, user) -> None:
    _, reply = turn(user)

    response = rate(signed_in, reply, rating="up")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="up" class="icon-button feedback-button" aria-pressed="true"' in html
    assert "Add a comment" in html
    feedback = Feedback.objects.get()
    assert (feedback.user, feedback.message, feedback.rating) == (user, reply, "up")
    assert not feedback.share_conversation


def test_rating_again_changes_the_one_feedback(signed_in, user) -> None:
    _, reply = turn(user)
    rate(signed_in, reply, rating="up")

    rate(signed_in, reply, rating="down", comment="  It made things up.  ", share="on")

    feedback = Feedback.objects.get()
    assert feedback.rating == "down"
    assert feedback.comment == "It made things up."
    assert feedback.share_conversation


def test_the_page_shows_the_persons_own_rating(signed_in, user) -> None:
    conversation, reply = turn(user)
    feedback_give(user=user, message=reply, rating="down", comment="Too long")

    html = signed_in.get(reverse("conversation_detail", args=[conversation.pk])).content.decode()

    assert 'value="down" class="icon-button feedback-button" aria-pressed="true"' in html
    assert "Too long" in html


def test_questions_and_replies_in_flight_cannot_be_rated(signed_in, user) -> None:
    _, reply = turn(user)
    assert rate(signed_in, reply.reply_to, rating="up").status_code == 409
    reply.status = Message.Status.STREAMING
    reply.save()
    assert rate(signed_in, reply, rating="up").status_code == 409
    assert not Feedback.objects.exists()


def test_a_bad_rating_is_refused(signed_in, user) -> None:
    _, reply = turn(user)
    assert rate(signed_in, reply, rating="meh").status_code == 400
    assert not Feedback.objects.exists()


def test_another_persons_reply_cannot_be_rated(signed_in) -> None:
    _, theirs = turn(UserFactory())
    assert rate(signed_in, theirs, rating="down").status_code == 404
    assert not Feedback.objects.exists()


def test_without_javascript_the_rating_returns_to_the_reply(signed_in, user) -> None:
    conversation, reply = turn(user)
    url = reverse("message_feedback", args=[conversation.pk, reply.pk])
    response = signed_in.post(url, {"rating": "up"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/c/{conversation.pk}/#message-{reply.pk}")
    assert Feedback.objects.get().rating == "up"


def test_the_conversation_page_costs_the_same_queries_however_many_replies_are_rated(
    signed_in, user, django_assert_max_num_queries
) -> None:
    conversation, reply = turn(user)
    feedback_give(user=user, message=reply, rating="up")
    url = reverse("conversation_detail", args=[conversation.pk])
    with django_assert_max_num_queries(20) as few:
        signed_in.get(url)
    for _ in range(10):
        question = Message.objects.create(conversation=conversation, role="user", text="More?")
        more = Message.objects.create(
            conversation=conversation, role="assistant", text="Yes.", reply_to=question
        )
        feedback_give(user=user, message=more, rating="down")
    with django_assert_max_num_queries(len(few.captured_queries)):
        signed_in.get(url)


def test_the_report_counts_ratings_per_deployment_and_model_and_per_day(user) -> None:
    sweden, france = DeploymentFactory(name="Sweden"), DeploymentFactory(name="France", model="o3")
    for deployment, rating in [(sweden, "up"), (sweden, "up"), (sweden, "down"), (france, "down")]:
        _, reply = turn(user, deployment)
        feedback_give(user=user, message=reply, rating=rating)

    report = feedback_report(Feedback.objects.all())

    by_name = {name: (model, ratings) for name, model, ratings in report.deployments}
    assert by_name["Sweden"][0] == "gpt-4.1"
    assert (by_name["Sweden"][1].up, by_name["Sweden"][1].down) == (2, 1)
    assert (by_name["France"][0], by_name["France"][1].down) == ("o3", 1)
    today = report.chart.bars[-1]
    assert (today.lower, today.upper) == (2, 2)
    assert report.chart.peak == 4
    assert len(report.chart.bars) == 30


@pytest.fixture
def admin_client(client: Client, staff_user) -> Client:
    client.force_login(staff_user)
    return client


def test_admins_see_ratings_and_comments_but_no_words_of_unshared_conversations(
    admin_client, user
) -> None:
    _, reply = turn(user, DeploymentFactory(name="Sweden"))
    feedback = feedback_give(user=user, message=reply, rating="down", comment="Wrong answer")

    pages = [
        admin_client.get(reverse("admin:chat_feedback_changelist")),
        admin_client.get(reverse("admin:chat_feedback_change", args=[feedback.pk])),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for words in (SECRET_QUESTION, SECRET_ANSWER, "BLUEBIRD", SECRET_TITLE, "Be secret."):
            assert words not in html
    searched = admin_client.get(reverse("admin:chat_feedback_changelist"), {"q": "BLUEBIRD"})
    assert searched.context["cl"].result_count == 0, "the search reads comments, not messages"
    listing = pages[0].content.decode()
    assert "Wrong answer" in listing
    assert "Sweden" in listing
    assert "not shared" in listing
    assert "feedback-chart-title" in listing
    conversation_url = reverse("admin:chat_feedback_conversation", args=[feedback.pk])
    assert conversation_url not in listing
    assert admin_client.get(conversation_url).status_code == 404


def test_a_shared_conversation_is_readable_by_admins(admin_client, user) -> None:
    _, reply = turn(user)
    feedback = feedback_give(user=user, message=reply, rating="up", share=True)
    conversation_url = reverse("admin:chat_feedback_conversation", args=[feedback.pk])

    listing = admin_client.get(reverse("admin:chat_feedback_changelist")).content.decode()
    page = admin_client.get(conversation_url)

    assert conversation_url in listing
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET_QUESTION in html
    assert SECRET_ANSWER in html
    assert "the rated reply" in html


def test_unsharing_takes_the_conversation_back(admin_client, user) -> None:
    _, reply = turn(user)
    feedback = feedback_give(user=user, message=reply, rating="up", share=True)
    feedback_give(user=user, message=reply, rating="up", share=False)
    url = reverse("admin:chat_feedback_conversation", args=[feedback.pk])
    assert admin_client.get(url).status_code == 404


def test_people_who_are_not_staff_cannot_read_a_shared_conversation(client, user) -> None:
    _, reply = turn(user)
    feedback = feedback_give(user=user, message=reply, rating="up", share=True)
    client.force_login(UserFactory())
    response = client.get(reverse("admin:chat_feedback_conversation", args=[feedback.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_feedback_list_costs_the_same_queries_however_many_rows(
    admin_client, user, django_assert_max_num_queries
) -> None:
    deployment = DeploymentFactory()
    _, reply = turn(user, deployment)
    feedback_give(user=user, message=reply, rating="up", share=True)
    url = reverse("admin:chat_feedback_changelist")
    with django_assert_max_num_queries(30) as few:
        admin_client.get(url)
    for _ in range(12):
        _, reply = turn(UserFactory(), deployment)
        feedback_give(user=reply.conversation.owner, message=reply, rating="down", share=True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(url)
