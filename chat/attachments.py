"""Taking in a file a person attaches: what it is (by its bytes, never its name), whether it
fits the limits, and a clean copy to keep.

Images are decoded and re-encoded with Pillow before they are stored: that drops their
metadata (location, camera, thumbnails) and anything a polyglot file carried besides the
picture. PDFs are kept as sent; the model reads them, the app never renders them. The limits
default to what Azure OpenAI accepts inline (``CHAT_IMAGE_MAX_BYTES``, ``CHAT_PDF_MAX_BYTES``,
``CHAT_ATTACHMENTS_PER_MESSAGE``, ``CHAT_ATTACHMENTS_MAX_TOTAL_BYTES``).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.functional import Promise
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _, gettext_lazy, ngettext
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import User
from chat.catalog import reads_attachments
from chat.models import Attachment, Deployment

# Pillow's format name -> the content type we store and send.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
PDF_TYPE = "application/pdf"
ACCEPTED = gettext_lazy("PNG, JPEG, WebP or GIF images, and PDF files")


class AttachmentRefused(Exception):
    def __init__(self, message: str | Promise) -> None:
        # Said in the language active where it is raised: the person's.
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True, slots=True)
class _Clean:
    kind: str
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None


def _read(upload: UploadedFile[bytes], limit: int) -> bytes:
    data: bytes = upload.read(limit + 1)
    if len(data) > limit:
        raise AttachmentRefused(
            _("%(name)s is larger than %(limit)s, the most the model accepts. Send a smaller file.")
            % {"name": _shown_name(upload), "limit": filesizeformat(limit)}
        )
    if not data:
        raise AttachmentRefused(_("%(name)s is empty.") % {"name": _shown_name(upload)})
    return data


def _shown_name(upload: UploadedFile[bytes]) -> str:
    return (upload.name or "The file")[:80]


def _clean_image(data: bytes, name: str) -> _Clean:
    try:
        with Image.open(BytesIO(data)) as image:
            kind = image.format or ""
            if kind not in IMAGE_TYPES:
                raise AttachmentRefused(
                    _("%(name)s is not a file the model can read (%(accepted)s).")
                    % {"name": name, "accepted": ACCEPTED}
                )
            if image.width * image.height > settings.CHAT_IMAGE_MAX_PIXELS:
                raise AttachmentRefused(
                    _(
                        "%(name)s is %(width)dx%(height)d pixels, more than the model takes. "
                        "Send a smaller picture."
                    )
                    % {"name": name, "width": image.width, "height": image.height}
                )
            if getattr(image, "is_animated", False):
                raise AttachmentRefused(
                    _("%(name)s is animated; the model reads still images only.") % {"name": name}
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
            if kind == "JPEG" and upright.mode not in ("RGB", "L"):
                upright = upright.convert("RGB")
            out = BytesIO()
            options = {"quality": 90} if kind in ("JPEG", "WEBP") else {}
            upright.save(out, format=kind, **options)
            return _Clean("image", IMAGE_TYPES[kind], out.getvalue(), upright.width, upright.height)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise AttachmentRefused(
            _("%(name)s could not be read as an image; it may be damaged. (%(accepted)s only.)")
            % {"name": name, "accepted": ACCEPTED}
        ) from error


def _clean(upload: UploadedFile[bytes]) -> _Clean:
    name = _shown_name(upload)
    head = upload.read(8)
    upload.seek(0)
    if head.startswith(b"%PDF-"):
        return _Clean("pdf", PDF_TYPE, _read(upload, settings.CHAT_PDF_MAX_BYTES))
    return _clean_image(_read(upload, settings.CHAT_IMAGE_MAX_BYTES), name)


def attachment_accept(*, owner: User, upload: UploadedFile[bytes]) -> Attachment:
    """Check and keep one uploaded file as ``owner``'s draft attachment."""
    clean = _clean(upload)
    attachment = Attachment(
        owner=owner,
        token=secrets.token_hex(16),
        kind=clean.kind,
        content_type=clean.content_type,
        name=get_valid_filename(upload.name or "attachment")[:200] or "attachment",
        size=len(clean.data),
        width=clean.width,
        height=clean.height,
    )
    attachment.file.save(attachment.name, ContentFile(clean.data), save=False)
    attachment.save()
    return attachment


def attachments_check(attachments: list[Attachment], *, deployment: Deployment | None) -> None:
    """The limits of one message: a model that reads files, how many, and how much in all;
    refused before anything is sent."""
    if attachments and deployment is not None and not reads_attachments(deployment.model):
        raise AttachmentRefused(
            _(
                "%(deployment)s (%(model)s) does not read images or PDFs. Remove the files, or "
                "choose a model that reads them."
            )
            % {"deployment": deployment.name, "model": deployment.model}
        )
    if len(attachments) > settings.CHAT_ATTACHMENTS_PER_MESSAGE:
        raise AttachmentRefused(
            ngettext(
                "A message can carry at most %(count)d file.",
                "A message can carry at most %(count)d files.",
                settings.CHAT_ATTACHMENTS_PER_MESSAGE,
            )
            % {"count": settings.CHAT_ATTACHMENTS_PER_MESSAGE}
        )
    total = sum(attachment.size for attachment in attachments)
    if total > settings.CHAT_ATTACHMENTS_MAX_TOTAL_BYTES:
        raise AttachmentRefused(
            _("These files come to %(total)s; a message can carry at most %(limit)s.")
            % {
                "total": filesizeformat(total),
                "limit": filesizeformat(settings.CHAT_ATTACHMENTS_MAX_TOTAL_BYTES),
            }
        )


def attachment_data_url(attachment: Attachment) -> str:
    """The file as a data URL, as the Responses API takes it inline."""
    with attachment.file.open("rb") as stored:
        encoded = base64.b64encode(stored.read()).decode("ascii")
    return f"data:{attachment.content_type};base64,{encoded}"


def attachment_input_part(attachment: Attachment) -> dict[str, str]:
    """The content part of a user message that carries the file: ``input_image`` with a data
    URL, or ``input_file`` with ``file_data`` (never an upload with purpose ``user_data``)."""
    if attachment.kind == Attachment.Kind.IMAGE:
        return {"type": "input_image", "image_url": attachment_data_url(attachment)}
    return {
        "type": "input_file",
        "filename": attachment.name,
        "file_data": attachment_data_url(attachment),
    }
