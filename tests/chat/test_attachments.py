"""Attachments: decided by their bytes, kept clean, bounded, served to their owner only, and
gone with their conversation."""

import base64
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from chat.attachments import (
    AttachmentRefused,
    attachment_accept,
    attachment_input_part,
    attachments_check,
)
from chat.models import Attachment, Conversation, Message
from tests.factories import DeploymentFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt, **save)
    return out.getvalue()


def upload(data: bytes, name: str = "picture.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def stored_bytes(attachment: Attachment) -> bytes:
    with attachment.file.open("rb") as stored:
        return stored.read()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_each_image_type_is_taken_by_its_bytes(user, fmt: str, content_type: str) -> None:
    attachment = attachment_accept(owner=user, upload=upload(image_bytes(fmt), "no-extension"))
    assert attachment.kind == Attachment.Kind.IMAGE
    assert attachment.content_type == content_type
    assert (attachment.width, attachment.height) == (64, 48)
    assert Image.open(BytesIO(stored_bytes(attachment))).format == fmt


def test_the_name_decides_nothing(user) -> None:
    pdf_named_png = attachment_accept(owner=user, upload=upload(PDF, "holiday.png"))
    assert pdf_named_png.content_type == "application/pdf"
    png_named_pdf = attachment_accept(owner=user, upload=upload(image_bytes(), "report.pdf"))
    assert png_named_pdf.content_type == "image/png"
    with pytest.raises(AttachmentRefused, match=r"could not be read as an image"):
        attachment_accept(owner=user, upload=upload(b"<html><script>x</script>", "photo.png"))


def test_the_stored_name_is_never_the_persons(user) -> None:
    attachment = attachment_accept(owner=user, upload=upload(image_bytes(), "../../etc/passwd.png"))
    assert ".." not in attachment.file.name
    assert "passwd" not in attachment.file.name
    assert attachment.file.name.startswith(f"attachments/{user.pk}/")
    assert "/" not in attachment.name, "shown back as a plain name"


def test_images_lose_their_metadata_and_any_payload_they_smuggle(user) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Co"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    with_exif = image_bytes("JPEG", exif=exif.tobytes())
    assert b"Secret Camera Co" in with_exif
    polyglot = image_bytes() + b"PK\x03\x04<script>alert(1)</script>"

    clean_jpeg = stored_bytes(attachment_accept(owner=user, upload=upload(with_exif, "a.jpg")))
    clean_png = stored_bytes(attachment_accept(owner=user, upload=upload(polyglot, "b.png")))
    assert b"Secret Camera Co" not in clean_jpeg
    assert Image.open(BytesIO(clean_jpeg)).getexif() == {}
    assert b"<script>" not in clean_png
    assert b"PK\x03\x04" not in clean_png


def test_an_animated_gif_is_refused_and_a_still_one_taken(user) -> None:
    frames = [Image.new("RGB", (10, 10), color) for color in ("red", "blue")]
    out = BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], loop=0)
    with pytest.raises(AttachmentRefused, match="animated"):
        attachment_accept(owner=user, upload=upload(out.getvalue(), "moving.gif"))
    assert attachment_accept(owner=user, upload=upload(image_bytes("GIF"), "still.gif"))


def test_limits_are_explained(user, settings: Any) -> None:
    settings.CHAT_IMAGE_MAX_BYTES = 1000
    with pytest.raises(AttachmentRefused, match="larger than 1000"):
        attachment_accept(owner=user, upload=upload(image_bytes(size=(400, 400)), "big.png"))
    settings.CHAT_IMAGE_MAX_BYTES = 10_000_000
    settings.CHAT_IMAGE_MAX_PIXELS = 100
    with pytest.raises(AttachmentRefused, match="pixels"):
        attachment_accept(owner=user, upload=upload(image_bytes(size=(20, 20)), "wide.png"))
    with pytest.raises(AttachmentRefused, match="empty"):
        attachment_accept(owner=user, upload=upload(b"", "nothing.png"))
    assert not Attachment.objects.exists(), "nothing refused was kept"


def test_a_message_is_bounded_in_count_and_total(user, settings: Any) -> None:
    files = [attachment_accept(owner=user, upload=upload(image_bytes())) for _ in range(3)]
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 2
    with pytest.raises(AttachmentRefused, match="at most 2 files"):
        attachments_check(files, deployment=None)
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 10
    settings.CHAT_ATTACHMENTS_MAX_TOTAL_BYTES = sum(f.size for f in files) - 1
    with pytest.raises(AttachmentRefused, match="can carry at most"):
        attachments_check(files, deployment=None)


def test_a_model_that_reads_no_files_is_refused_before_anything_is_sent(user) -> None:
    files = [attachment_accept(owner=user, upload=upload(image_bytes()))]
    text_only = DeploymentFactory.build(name="Mini", model="o3-mini")
    with pytest.raises(AttachmentRefused, match=r"Mini \(o3-mini\) does not read images"):
        attachments_check(files, deployment=text_only)
    attachments_check(files, deployment=DeploymentFactory.build(model="gpt-4.1"))
    attachments_check([], deployment=text_only)


def test_what_the_model_is_sent(user) -> None:
    image = attachment_accept(owner=user, upload=upload(image_bytes(), "cat.png"))
    pdf = attachment_accept(owner=user, upload=upload(PDF, "report.pdf"))

    image_part = attachment_input_part(image)
    assert image_part["type"] == "input_image"
    prefix, encoded = image_part["image_url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == stored_bytes(image)
    assert attachment_input_part(pdf) == {
        "type": "input_file",
        "filename": "report.pdf",
        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
    }


# Over HTTP


def test_upload_shows_a_chip_and_the_file_is_its_owners_alone(
    client: Client, user, other_user
) -> None:
    client.force_login(user)
    response = client.post(reverse("attachment_upload"), {"file": upload(image_bytes())})
    assert response.status_code == 200
    attachment = Attachment.objects.get(owner=user)
    html = response.content.decode()
    assert f'name="attachments" value="{attachment.pk}"' in html
    assert "picture.png" in html

    served = client.get(reverse("attachment_file", args=[attachment.pk]))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"".join(served.streaming_content) == stored_bytes(attachment)

    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(reverse("attachment_file", args=[attachment.pk])).status_code == 404
    assert stranger.post(reverse("attachment_remove", args=[attachment.pk])).status_code == 404


def test_a_pdf_is_always_a_download(client: Client, user) -> None:
    client.force_login(user)
    client.post(reverse("attachment_upload"), {"file": upload(PDF, "report.pdf")})
    pdf = Attachment.objects.get(owner=user)
    served = client.get(reverse("attachment_file", args=[pdf.pk]))
    assert served["Content-Type"] == "application/pdf"
    assert served["Content-Disposition"].startswith("attachment;")


def test_a_refused_upload_says_why(client: Client, user) -> None:
    client.force_login(user)
    response = client.post(reverse("attachment_upload"), {"file": upload(b"MZ\x90\x00", "x.png")})
    assert response.status_code == 400
    assert "could not be read as an image" in response.content.decode()
    assert client.post(reverse("attachment_upload")).status_code == 400


def test_a_draft_can_be_removed_but_a_sent_file_stays(client: Client, user, media: Path) -> None:
    client.force_login(user)
    client.post(reverse("attachment_upload"), {"file": upload(image_bytes())})
    draft = Attachment.objects.get(owner=user)
    path = media / draft.file.name
    assert path.exists()
    with_callbacks = client.post(reverse("attachment_remove", args=[draft.pk]))
    assert with_callbacks.status_code == 200
    assert not Attachment.objects.filter(pk=draft.pk).exists()

    conversation = Conversation.objects.create(owner=user)
    message = Message.objects.create(conversation=conversation, role="user", text="see this")
    sent = attachment_accept(owner=user, upload=upload(image_bytes()))
    sent.message, sent.conversation = message, conversation
    sent.save()
    assert client.post(reverse("attachment_remove", args=[sent.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_files_go_with_their_conversation(user, media: Path) -> None:
    conversation = Conversation.objects.create(owner=user)
    attachment = attachment_accept(owner=user, upload=upload(image_bytes()))
    attachment.conversation = conversation
    attachment.save()
    path = media / attachment.file.name
    assert path.exists()

    conversation.delete()

    assert not Attachment.objects.exists()
    assert not path.exists()
