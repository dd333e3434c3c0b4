from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from chat import branching, replies, selectors, services
from chat.forms import MessageForm, ModelPickForm, NewConversationForm, RenameForm, SearchForm
from chat.models import Conversation, Message
from config.unavailable import keeps_draft_when_unavailable


class AuthenticatedRequest(HttpRequest):
    """Every chat view sits behind LoginRequiredMiddleware, so ``user`` is a signed-in User."""

    user: User
    htmx: HtmxDetails


async def _signed_in_user(request: HttpRequest) -> User:
    user = await request.auser()
    if not isinstance(user, User):  # LoginRequiredMiddleware lets no anonymous request here
        raise PermissionDenied
    return user


def _sidebar_context(
    request: AuthenticatedRequest, *, current: Conversation | None = None
) -> dict[str, object]:
    query = SearchForm(request.GET).query()
    conversations = Conversation.objects.search(owner=request.user, query=query)
    page = Paginator(
        conversations.only("pk", "title", "updated_at"), settings.CHAT_CONVERSATIONS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return {"page": page, "query": query, "current": current}


@require_GET
def home(request: AuthenticatedRequest) -> HttpResponse:
    form = NewConversationForm()
    return render(request, "chat/home.html", {"form": form, **_sidebar_context(request)})


@require_GET
def conversation_list(request: AuthenticatedRequest) -> HttpResponse:
    current_id = request.GET.get("current")
    context = _sidebar_context(request)
    context["current_id"] = int(current_id) if current_id and current_id.isdigit() else None
    partial = "conversation_items" if request.GET.get("page") else "conversation_list"
    return render(request, f"chat/conversation_list.html#{partial}", context)


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
        )
    except services.SessionEnded:
        return redirect_to_login(request.get_full_path())
    except services.TurnRefused as refused:
        return await sync_to_async(_conversation_page)(
            request,
            conversation,
            draft=form.cleaned_data["text"],
            error=refused.message,
            status=429,
        )
    if turn.created:
        replies.reply_start(turn)
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
async def conversation_create(request: AuthenticatedRequest) -> HttpResponse:
    user = await _signed_in_user(request)
    form = await sync_to_async(_bound_new_conversation_form)(request)
    if not form.is_valid():
        context = await sync_to_async(_sidebar_context)(request)
        return await sync_to_async(render)(
            request, "chat/home.html", {"form": form, **context}, status=400
        )
    try:
        turn = await sync_to_async(services.conversation_start)(
            owner=user,
            deployment=form.cleaned_data["deployment"],
            instructions=form.cleaned_data["instructions"],
            text=form.cleaned_data["text"],
            client_id=form.cleaned_data["client_id"],
            session_key=request.session.session_key,
        )
    except services.SessionEnded:
        return redirect_to_login(request.get_full_path())
    except services.TurnRefused as refused:
        # Nothing was kept: the form comes back as it was sent, with the reason.
        form.add_error(None, refused.message)
        context = await sync_to_async(_sidebar_context)(request)
        return await sync_to_async(render)(
            request, "chat/home.html", {"form": form, **context}, status=429
        )
    replies.reply_start(turn)
    return redirect("conversation_detail", conversation_id=turn.conversation.pk)


def _bound_new_conversation_form(request: AuthenticatedRequest) -> NewConversationForm:
    form = NewConversationForm(request.POST)
    form.is_valid()
    return form


def _conversation_page(
    request: AuthenticatedRequest,
    conversation: Conversation,
    *,
    draft: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    chat_messages, has_earlier = selectors.branch_page(conversation)
    in_flight = next((m for m in reversed(chat_messages) if m.in_flight), None)
    # Not "messages": that name belongs to django.contrib.messages (the flash messages).
    context = {
        "conversation": conversation,
        "deployment": selectors.deployment_for(conversation),
        "model_choices": selectors.usable_deployments(request.user),
        "chat_messages": chat_messages,
        "has_earlier": has_earlier,
        "in_flight_message": in_flight,
        "draft": draft,
        "error": error,
        "new_client_id": services.new_client_id(),
        **_sidebar_context(request, current=conversation),
    }
    return render(request, "chat/conversation_detail.html", context, status=status)


def _owned_conversation(request: AuthenticatedRequest, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.for_user(request.user).select_related("deployment"),
        pk=conversation_id,
    )


@require_GET
def conversation_detail(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    return _conversation_page(request, _owned_conversation(request, conversation_id))


@require_GET
def message_list(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """Earlier messages, a page at a time, for "Show earlier messages"."""
    conversation = _owned_conversation(request, conversation_id)
    before = request.GET.get("before", "")
    if not before.isdigit():
        return HttpResponse("Say which message to show the ones before.", status=400)
    chat_messages, has_earlier = selectors.branch_page(conversation, before=int(before))
    return render(
        request,
        "chat/conversation_detail.html#message_batch",
        {"conversation": conversation, "chat_messages": chat_messages, "has_earlier": has_earlier},
    )


@keeps_draft_when_unavailable("text")
@require_POST
async def message_create(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The composer without websockets: the same form and the same service as the consumer.

    A refused message comes back in the composer with the reason, so nothing typed is lost.
    """
    user = await _signed_in_user(request)
    conversation = await sync_to_async(_owned_conversation)(request, conversation_id)
    form = MessageForm(request.POST, user=user)
    if not await sync_to_async(form.is_valid)():
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        return await sync_to_async(_conversation_page)(
            request, conversation, draft=request.POST.get("text", ""), error=errors, status=400
        )
    return await _start_turn(request, user, conversation, form)


@keeps_draft_when_unavailable("text")
@require_POST
async def message_edit(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    """Editing a message without websockets: the same form and service as the consumer."""
    user = await _signed_in_user(request)
    conversation = await sync_to_async(_owned_conversation)(request, conversation_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        return await sync_to_async(_conversation_page)(
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
    user = await _signed_in_user(request)
    conversation = await sync_to_async(_owned_conversation)(request, conversation_id)
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
        return await sync_to_async(_conversation_page)(
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
    conversation = _owned_conversation(request, conversation_id)
    try:
        conversation = branching.branch_show(conversation=conversation, message_id=message_id)
    except Message.DoesNotExist as missing:
        raise Http404("No such message in this conversation.") from missing
    except branching.BranchBusy:
        return _conversation_page(
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
def conversation_model(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The composer's model picker: the conversation's next turn goes to the model picked."""
    conversation = _owned_conversation(request, conversation_id)
    form = ModelPickForm(request.POST, user=request.user)
    if not form.is_valid():
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        return HttpResponse(errors, status=400)
    services.conversation_switch_model(
        conversation=conversation, deployment=form.cleaned_data["deployment"]
    )
    if not request.headers.get("HX-Request"):
        return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))
    return render(
        request,
        "chat/conversation_detail.html#chat_subtitle",
        {"conversation": conversation, "deployment": selectors.deployment_for(conversation)},
    )


@require_POST
async def reply_stop(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    await sync_to_async(_owned_conversation)(request, conversation_id)
    message_id = request.POST.get("message_id", "")
    await replies.reply_stop(
        conversation_id=conversation_id,
        message_id=int(message_id) if message_id.isdigit() else None,
    )
    return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))


@require_http_methods(["GET", "POST"])
def conversation_rename(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _owned_conversation(request, conversation_id)
    template = "chat/conversation_list.html"
    if request.method == "GET":
        if request.GET.get("cancel"):
            return render(request, f"{template}#conversation_item", {"conversation": conversation})
        form = RenameForm(instance=conversation)
        return render(
            request, f"{template}#rename_form", {"conversation": conversation, "form": form}
        )
    form = RenameForm(request.POST, instance=conversation)
    if not form.is_valid():
        return render(
            request,
            f"{template}#rename_form",
            {"conversation": conversation, "form": form},
            status=400,
        )
    services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    if request.htmx:
        return render(
            request,
            f"{template}#conversation_item",
            {"conversation": conversation, "renamed": True},
        )
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
def conversation_delete(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _owned_conversation(request, conversation_id)
    services.conversation_delete(conversation=conversation, deleted_by=request.user)
    viewing = (
        request.headers.get("HX-Current-URL", "").rstrip("/").endswith(f"/c/{conversation_id}")
    )
    if request.htmx and not viewing:
        return HttpResponse("")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("home"))
    flash.success(request, "Conversation deleted.")
    return redirect("home")
