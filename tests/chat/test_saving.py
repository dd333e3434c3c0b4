"""Saving a finished reply: only into the message still in flight for it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import llm
from chat.models import Conversation, Message, StoredResponse
from chat.saving import (
    ConversationGone,
    ReplyOutcome,
    ReplySuperseded,
    reply_finish,
    reply_renew_lease,
)
from chat.services import Turn, turn_start
from tests.factories import session_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def turn(user, sim_deployment) -> Turn:
    conversation = Conversation.objects.create(owner=user, deployment=sim_deployment)
    return turn_start(
        user=user,
        conversation_id=conversation.pk,
        text="Hello",
        client_id=None,
        session_key=session_for(user),
    )


def finished(turn: Turn, **fields) -> ReplyOutcome:
    return ReplyOutcome(
        text="Hi there",
        status=Message.Status.COMPLETED,
        deployment=turn.deployment,
        response_id="resp_kept",
        endpoint=turn.deployment.endpoint,
        usage=llm.Usage(input_tokens=3, output_tokens=2),
        stored_remotely=True,
        becomes_head=True,
        **fields,
    )


def test_a_finished_reply_is_saved_with_its_copy_and_becomes_the_head(turn: Turn) -> None:
    message = reply_finish(
        message=turn.assistant_message, conversation=turn.conversation, outcome=finished(turn)
    )
    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETED
    assert message.html.startswith("<p>Hi there")
    assert message.alive_until is None
    row = StoredResponse.objects.get(response_id="resp_kept")
    assert row.message_id == message.pk
    assert row.endpoint == turn.deployment.endpoint
    turn.conversation.refresh_from_db()
    assert turn.conversation.head_response_id == "resp_kept"


def test_a_reply_given_up_as_orphaned_is_not_overwritten(turn: Turn) -> None:
    Message.objects.filter(pk=turn.assistant_message.pk).update(
        status=Message.Status.FAILED, error="The server restarted while this reply was written."
    )
    with pytest.raises(ReplySuperseded):
        reply_finish(
            message=turn.assistant_message, conversation=turn.conversation, outcome=finished(turn)
        )
    message = Message.objects.get(pk=turn.assistant_message.pk)
    assert message.status == Message.Status.FAILED
    assert message.text == ""


def test_a_retried_reply_is_not_overwritten_by_the_reply_it_replaced(turn: Turn) -> None:
    """A retry reuses the message with a new start time: the old reply's save finds nothing."""
    Message.objects.filter(pk=turn.assistant_message.pk).update(
        created_at=turn.assistant_message.created_at + timedelta(seconds=5)
    )
    with pytest.raises(ReplySuperseded):
        reply_finish(
            message=turn.assistant_message, conversation=turn.conversation, outcome=finished(turn)
        )


def test_a_deleted_conversation_is_gone_not_a_database_error(turn: Turn) -> None:
    turn.conversation.delete()
    with pytest.raises(ConversationGone):
        reply_finish(
            message=turn.assistant_message, conversation=turn.conversation, outcome=finished(turn)
        )


def test_a_lease_is_renewed_only_while_the_reply_is_in_flight(turn: Turn) -> None:
    before = Message.objects.get(pk=turn.assistant_message.pk).alive_until
    assert before is not None
    assert before > timezone.now()
    assert reply_renew_lease(message_id=turn.assistant_message.pk)
    Message.objects.filter(pk=turn.assistant_message.pk).update(status=Message.Status.COMPLETED)
    assert not reply_renew_lease(message_id=turn.assistant_message.pk)


def test_an_expired_lease_lets_the_next_turn_take_over(turn: Turn, user) -> None:
    Message.objects.filter(pk=turn.assistant_message.pk).update(
        alive_until=timezone.now() - timedelta(seconds=1)
    )
    next_turn = turn_start(
        user=user,
        conversation_id=turn.conversation.pk,
        text="Anyone?",
        client_id=None,
        session_key=session_for(user),
    )
    assert next_turn.created
    orphan = Message.objects.get(pk=turn.assistant_message.pk)
    assert orphan.status == Message.Status.FAILED
    assert orphan.error_code == "interrupted"


def test_a_reasoning_summary_is_saved_sanitized_as_model_output(turn: Turn) -> None:
    item = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "sealed"}
    outcome = finished(
        turn,
        reasoning_summary="**Plan**\x00 <script>alert(1)</script> [x](javascript:alert(1))",
        reasoning_items=(item,),
    )
    message = reply_finish(
        message=turn.assistant_message, conversation=turn.conversation, outcome=outcome
    )
    message.refresh_from_db()
    assert message.reasoning_summary.startswith("**Plan** <script>")
    assert message.reasoning_html.startswith("<p><strong>Plan</strong> &lt;script&gt;")
    assert "<script" not in message.reasoning_html
    assert "<a" not in message.reasoning_html, "a javascript: link stays literal text"
    assert message.reasoning_items == [item]
