"""Turns without websockets: the composer's form posts (a message, a new version of one),
retry, regenerate, stop, and the arrows between branches. The same forms and services as the
conversation socket; each answers with the conversation page (or a redirect to it)."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import User
from chat import branching, replies, selectors, services
from chat.attachments import AttachmentRefused, attachment_accept
from chat.forms import MessageForm
from chat.models import Conversation, Message
from chat.views import AuthenticatedRequest, conversation_or_404, conversation_page, signed_in_user
from config.unavailable import keeps_draft_when_unavailable


async def _start_turn(
    request: AuthenticatedRequest,
    user: User,
    conversation: Conversation,
    form: MessageForm,
    *,
    edit_of: int | None = None,
) -> HttpResponse:
    """Save the message (or the new version of ``edit_of``) and start its reply, or show the
    refusal with the text kept."""
    try:
        turn = await sync_to_async(services.turn_start)(
            user=user,
            conversation_id=conversation.pk,
            text=form.cleaned_data["text"],
            client_id=form.cleaned_data["client_id"],
            session_key=request.session.session_key,
            deployment=form.cleaned_data.get("deployment"),
            edit_of=edit_of,
            attachment_ids=form.cleaned_data.get("attachments", []),
        )
    except services.SessionEnded:
        return redirect_to_login(request.get_full_path())
    except services.TurnRefused as refused:
        return await sync_to_async(conversation_page)(
            request,
            conversation,
            draft=form.cleaned_data["text"],
            draft_attachments=form.cleaned_data.get("attachments", []),
            error=refused.message,
            status=429,
        )
    if turn.created:
        replies.reply_start(turn)
    return redirect("conversation_detail", conversation_id=conversation.pk)


@keeps_draft_when_unavailable("text")
@require_POST
async def message_create(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The composer without websockets: the same form and the same service as the consumer.

    A refused message comes back in the composer with the reason, so nothing typed is lost.
    """
    user = await signed_in_user(request)
    conversation = await sync_to_async(conversation_or_404)(request, conversation_id)
    data, refused = await sync_to_async(_with_uploads)(request)
    form = MessageForm(data, user=user)
    if refused or not await sync_to_async(form.is_valid)():
        errors = refused or " ".join(
            str(e) for field_errors in form.errors.values() for e in field_errors
        )
        return await sync_to_async(conversation_page)(
            request,
            conversation,
            draft=request.POST.get("text", ""),
            draft_attachments=[int(v) for v in data.getlist("attachments") if v.isdigit()],
            error=errors,
            status=400,
        )
    return await _start_turn(request, user, conversation, form)


def _with_uploads(request: AuthenticatedRequest) -> tuple[QueryDict, str]:
    """The composer without JavaScript sends its files with the message (``file``): each is
    kept as a draft and added to the message's ``attachments``. Also what was refused."""
    data = request.POST.copy()
    refusals = []
    for upload in request.FILES.getlist("file"):
        try:
            data.appendlist(
                "attachments", str(attachment_accept(owner=request.user, upload=upload).pk)
            )
        except AttachmentRefused as refused:
            refusals.append(refused.message)
    return data, " ".join(refusals)


@keeps_draft_when_unavailable("text")
@require_POST
async def message_edit(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    """Editing a message without websockets: the same form and service as the consumer."""
    user = await signed_in_user(request)
    conversation = await sync_to_async(conversation_or_404)(request, conversation_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        return await sync_to_async(conversation_page)(
            request, conversation, error=errors, status=400
        )
    return await _start_turn(request, user, conversation, form, edit_of=message_id)


@require_POST
async def message_retry(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    return await _ask_again(request, conversation_id, message_id, services.turn_retry)


@require_POST
async def message_regenerate(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    return await _ask_again(request, conversation_id, message_id, services.turn_regenerate)


async def _ask_again(
    request: AuthenticatedRequest,
    conversation_id: int,
    message_id: int,
    service: Callable[..., services.Turn],
) -> HttpResponse:
    """Retry or regenerate a reply without websockets."""
    user = await signed_in_user(request)
    conversation = await sync_to_async(conversation_or_404)(request, conversation_id)
    try:
        turn = await sync_to_async(service)(
            user=user,
            conversation_id=conversation_id,
            message_id=message_id,
            session_key=request.session.session_key,
        )
    except services.SessionEnded:
        return redirect_to_login(request.get_full_path())
    except services.TurnRefused as refused:
        return await sync_to_async(conversation_page)(
            request, conversation, error=refused.message, status=409
        )
    replies.reply_start(turn)
    return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))


@require_POST
def branch_show(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    """The arrows between branches: show the branch through ``message_id``; the page's
    messages come back (the whole page without htmx), and the conversation's other tabs follow."""
    conversation = conversation_or_404(request, conversation_id)
    try:
        conversation = branching.branch_show(conversation=conversation, message_id=message_id)
    except Message.DoesNotExist as missing:
        raise Http404("No such message in this conversation.") from missing
    except branching.BranchBusy:
        return conversation_page(
            request, conversation, error=branching.BranchBusy.message, status=409
        )
    async_to_sync(replies.branch_shown)(conversation_id=conversation.pk)
    if not request.headers.get("HX-Request"):
        return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))
    chat_messages, has_earlier = selectors.branch_page(conversation)
    return render(
        request,
        "chat/conversation_detail.html#message_batch",
        {"conversation": conversation, "chat_messages": chat_messages, "has_earlier": has_earlier},
    )


@require_POST
async def reply_stop(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    await sync_to_async(conversation_or_404)(request, conversation_id)
    message_id = request.POST.get("message_id", "")
    await replies.reply_stop(
        conversation_id=conversation_id,
        message_id=int(message_id) if message_id.isdigit() else None,
    )
    return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))
