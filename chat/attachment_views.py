"""Attachments over HTTP: upload from the composer, the file itself for its owner, and removing
a draft before it is sent. Another person's attachment is a 404, as everything else is."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from chat.attachments import AttachmentRefused, attachment_accept
from chat.models import Attachment
from chat.views import AuthenticatedRequest


@require_POST
def attachment_upload(request: AuthenticatedRequest) -> HttpResponse:
    """One or more files (field ``file``): each kept as a draft, shown as a chip to send."""
    uploads = request.FILES.getlist("file")
    if not uploads:
        return render(
            request,
            "chat/_attachment_chips.html",
            {"error": gettext("Choose a file to attach.")},
            status=400,
        )
    accepted, errors = [], []
    for upload in uploads:
        try:
            accepted.append(attachment_accept(owner=request.user, upload=upload))
        except AttachmentRefused as refused:
            errors.append(refused.message)
    return render(
        request,
        "chat/_attachment_chips.html",
        {"attachments": accepted, "error": " ".join(errors)},
        status=200 if accepted or not errors else 400,
    )


@require_GET
def attachment_file(request: AuthenticatedRequest, attachment_id: int) -> FileResponse:
    attachment = get_object_or_404(Attachment.objects.for_user(request.user), pk=attachment_id)
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    # A PDF is never opened in the app's origin; an image may be shown inline (our thumbnails).
    disposition = content_disposition_header(
        attachment.kind == Attachment.Kind.PDF, attachment.name
    )
    if disposition:
        response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
def attachment_remove(request: AuthenticatedRequest, attachment_id: int) -> HttpResponse:
    """Take a draft out of the composer; a sent attachment stays with its message. (200 with
    nothing, not 204: htmx swaps no 204, and the chip's ``hx-swap="delete"`` must run.)"""
    attachment = get_object_or_404(
        Attachment.objects.for_user(request.user).drafts(), pk=attachment_id
    )
    attachment.delete()
    return HttpResponse("")
