"""Attachments in a turn: only the sender's own drafts, within the limits, bound to the message
in the turn's transaction, and sent to the model (the simulator) as content parts, again with
every rebuilt history, regenerate and edit."""

import json
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from chat import services
from chat.attachments import attachment_accept, attachment_data_url
from chat.forms import MessageForm
from chat.models import Attachment, Conversation, Message
from tests.chat.sockets import (
    connect,
    conversation_on,
    model_requests,
    receive_until,
    wait_for_reply,
)
from tests.factories import UserFactory, session_for

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (8, 6), (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def drafts(owner: Any) -> tuple[Attachment, Attachment]:
    image = attachment_accept(owner=owner, upload=SimpleUploadedFile("chart.png", png()))
    pdf = attachment_accept(owner=owner, upload=SimpleUploadedFile("report.pdf", PDF))
    return image, pdf


def start(owner: Any, conversation: Conversation, text: str, ids: list[int]) -> services.Turn:
    return services.turn_start(
        user=owner,
        conversation_id=conversation.pk,
        text=text,
        client_id=uuid.uuid4(),
        session_key=session_for(owner),
        attachment_ids=ids,
    )


def attachment_parts(image: Attachment, pdf: Attachment) -> list[dict[str, str]]:
    return [
        {"type": "input_image", "image_url": attachment_data_url(image)},
        {"type": "input_file", "filename": "report.pdf", "file_data": attachment_data_url(pdf)},
    ]


@pytest.mark.django_db
def test_a_turn_binds_its_drafts_to_the_user_message(owner, conversation) -> None:
    image, pdf = drafts(owner)
    turn = start(owner, conversation, "", [pdf.pk, image.pk])

    assert turn.user_message.text == ""
    assert list(turn.user_message.attachments.all()) == [image, pdf]
    bound = Attachment.objects.filter(pk__in=[image.pk, pdf.pk])
    assert {(a.message_id, a.conversation_id) for a in bound} == {
        (turn.user_message.pk, conversation.pk)
    }
    conversation.refresh_from_db()
    assert conversation.title == "chart.png", "a message of files alone is named by its first"


@pytest.mark.django_db
def test_another_persons_draft_refuses_the_turn_and_saves_nothing(owner, conversation) -> None:
    theirs, _ = drafts(UserFactory())
    mine, _ = drafts(owner)

    with pytest.raises(services.TurnRefused, match="no longer available") as refused:
        start(owner, conversation, "Look", [mine.pk, theirs.pk])

    assert refused.value.code == "attachment_refused"
    assert not Message.objects.filter(conversation=conversation).exists()
    assert Attachment.objects.filter(message=None).count() == 4, "all still drafts"


@pytest.mark.django_db
def test_an_attachment_already_sent_cannot_be_sent_again(owner, conversation) -> None:
    image, _ = drafts(owner)
    turn = start(owner, conversation, "First", [image.pk])
    Message.objects.filter(pk=turn.assistant_message.pk).update(status=Message.Status.COMPLETED)

    with pytest.raises(services.TurnRefused, match="no longer available"):
        start(owner, conversation, "Again", [image.pk])
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db
def test_too_many_files_or_a_model_without_eyes_is_refused(
    owner, make_sim_deployment, settings
) -> None:
    image, pdf = drafts(owner)
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 1
    conversation = Conversation.objects.create(owner=owner, deployment=make_sim_deployment())
    with pytest.raises(services.TurnRefused, match="at most 1 file\\."):
        start(owner, conversation, "Both", [image.pk, pdf.pk])

    blind = Conversation.objects.create(
        owner=owner, deployment=make_sim_deployment(name="Mini", model="o3-mini")
    )
    with pytest.raises(services.TurnRefused, match="does not read images or PDFs"):
        start(owner, blind, "One", [image.pk])
    assert not Message.objects.exists()


def test_the_form_takes_files_alone_but_not_nothing() -> None:
    assert MessageForm({"text": "  ", "attachments": ["3", "3", "4"]}).is_valid()
    form = MessageForm({"text": "  ", "attachments": ["3", "3", "4"]})
    form.is_valid()
    assert form.cleaned_data["attachments"] == [3, 4]
    assert form.cleaned_data["text"] == ""
    assert MessageForm({"text": " "}).errors["text"] == ["Type a message before sending."]
    assert "malformed attachment" in str(MessageForm({"text": "x", "attachments": "1;2"}).errors)


def frame(text: str, ids: list[int], **extra: Any) -> str:
    return json.dumps(
        {
            "text": text,
            "attachments": [str(i) for i in ids],
            "client_id": str(uuid.uuid4()),
            "HEADERS": {"HX-Request": "true"},
            **extra,
        }
    )


@pytest.mark.django_db(transaction=True)
async def test_files_go_as_content_parts_and_the_model_answers_about_them(
    owner, conversation, clean_simulator
) -> None:
    image, pdf = await database_sync_to_async(drafts)(owner)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=frame("What are these?", [image.pk, pdf.pk]))
    frames = await receive_until(communicator, r"message-assistant status-completed")
    first = await wait_for_reply(conversation)
    await communicator.send_to(text_data=frame("And now?", []))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    await communicator.disconnect()

    assert 'class="message-attachments"' in frames, "the sent message shows its files"
    assert f'href="/attachments/{pdf.pk}/" download="report.pdf"' in frames
    assert first.text.startswith("I can see what you attached:")
    assert f"[image image/png, {image.size} bytes]" in first.text
    assert f"[file report.pdf, {len(PDF)} bytes]" in first.text
    bodies = model_requests(clean_simulator)
    assert len(bodies) == 2, "no early request for a turn with files"
    parts = await database_sync_to_async(attachment_parts)(image, pdf)
    assert bodies[0]["input"] == [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "What are these?"}, *parts],
        }
    ]
    assert bodies[1]["previous_response_id"] == first.response_id
    assert bodies[1]["input"] == "And now?", "the chain already holds the files"


@pytest.mark.django_db(transaction=True)
async def test_a_chained_turn_with_files_sends_them_with_its_text(
    owner, conversation, clean_simulator
) -> None:
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=frame("Hello", []))
    await receive_until(communicator, r"message-assistant status-completed")
    first = await wait_for_reply(conversation)
    image, _ = await database_sync_to_async(drafts)(owner)
    await communicator.send_to(text_data=frame("", [image.pk]))
    await receive_until(communicator, r"message-assistant status-(?!pending)")
    await communicator.disconnect()

    body = model_requests(clean_simulator)[1]
    assert body["previous_response_id"] == first.response_id
    url = await database_sync_to_async(attachment_data_url)(image)
    assert body["input"] == [
        {"role": "user", "content": [{"type": "input_image", "image_url": url}]}
    ], "files alone: no empty text part"


@pytest.mark.django_db(transaction=True)
async def test_a_rebuilt_history_regenerate_and_edit_send_the_files_again(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, store_policy="stateless")
    image, pdf = await database_sync_to_async(drafts)(owner)
    parts = await database_sync_to_async(attachment_parts)(image, pdf)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=frame("Read these", [image.pk, pdf.pk]))
    await receive_until(communicator, r"message-assistant status-completed")
    first = await wait_for_reply(conversation)
    question = await Message.objects.aget(conversation=conversation, role=Message.Role.USER)
    await communicator.send_to(text_data=frame("Thanks", []))
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.send_to(
        text_data=json.dumps({"action": "regenerate", "message_id": str(first.pk)})
    )
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.send_to(
        text_data=json.dumps(
            {
                "action": "edit",
                "message_id": str(question.pk),
                "text": "Read these again",
                "client_id": str(uuid.uuid4()),
            }
        )
    )
    await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()

    with_files = {"role": "user", "content": [{"type": "input_text", "text": "Read these"}, *parts]}
    history, regenerated, edited = model_requests(clean_simulator)[1:]
    assert history["input"] == [
        with_files,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Thanks"},
    ]
    assert regenerated["input"] == [with_files]
    assert edited["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "Read these again"}, *parts]}
    ], "an edit keeps the files of the message it replaces"
    edit = await Message.objects.filter(role=Message.Role.USER).alast()
    assert edit is not None
    copies = [a async for a in Attachment.objects.filter(message=edit)]
    assert [a.name for a in copies] == ["chart.png", "report.pdf"]
    assert {a.file.name for a in copies}.isdisjoint({image.file.name, pdf.file.name})


@pytest.mark.django_db
def test_the_page_shows_each_messages_files_in_constant_queries(
    client, owner, conversation, django_assert_max_num_queries
) -> None:
    for text in ("One", "Two", "Three"):
        image, pdf = drafts(owner)
        turn = start(owner, conversation, text, [image.pk, pdf.pk])
        Message.objects.filter(pk=turn.assistant_message.pk).update(
            status=Message.Status.COMPLETED, text="ok", html="<p>ok</p>"
        )
    client.force_login(owner)
    with django_assert_max_num_queries(25) as captured:
        html = client.get(f"/c/{conversation.pk}/").content.decode()
    assert html.count('class="attachment-preview"') == 3
    assert html.count('download="report.pdf"') == 3
    attachment_queries = [q for q in captured.captured_queries if "chat_attachment" in q["sql"]]
    assert len(attachment_queries) == 1, "one prefetch for every message's files"


@pytest.mark.django_db(transaction=True)
def test_without_javascript_the_files_go_with_the_form(client, owner, conversation) -> None:
    client.force_login(owner)
    url = f"/c/{conversation.pk}/messages/"
    refused = client.post(url, {"text": "", "file": SimpleUploadedFile("x.txt", b"plain")})
    assert refused.status_code == 400
    assert "could not be read as an image" in refused.content.decode()

    sent = client.post(
        url, {"text": "", "file": [SimpleUploadedFile("report.pdf", PDF)]}, follow=False
    )
    assert sent.status_code == 302
    question = Message.objects.get(conversation=conversation, role=Message.Role.USER)
    assert [a.name for a in question.attachments.all()] == ["report.pdf"]
