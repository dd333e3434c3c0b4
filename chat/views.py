"""The conversation pages: the home page, the list, one conversation and its earlier messages,
and what a person does to a conversation as a whole (start, rename, instructions, delete)."""

from __future__ import annotations

from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from chat import replies, selectors, services
from chat.feedback import feedback_attach
from chat.forms import (
    InstructionsForm,
    NewConversationForm,
    RenameForm,
    SearchForm,
)
from chat.models import Attachment, Conversation, Preset
from chat.presets import preset_picked, preset_start_values, presets_for
from chat.sidebar import sidebar_page

# A new chat that was refused or invalid, kept for the page it redirects to (Post/Redirect/Get:
# reloading that page must not send the message again).
NEW_CHAT_DRAFT = "new_chat_draft"
NEW_CHAT_FIELDS = ("deployment", "instructions", "text", "client_id")


class AuthenticatedRequest(HttpRequest):
    """Every chat view sits behind LoginRequiredMiddleware, so ``user`` is a signed-in User."""

    user: User
    htmx: HtmxDetails


async def signed_in_user(request: HttpRequest) -> User:
    user = await request.auser()
    if not isinstance(user, User):  # LoginRequiredMiddleware lets no anonymous request here
        raise PermissionDenied
    return user


def _sidebar_context(
    request: AuthenticatedRequest, *, current: Conversation | None = None
) -> dict[str, object]:
    query = SearchForm(request.GET).query()
    archived = request.GET.get("view") == "archived"
    page = sidebar_page(
        owner=request.user, query=query, archived=archived, number=request.GET.get("page")
    )
    return {"page": page, "query": query, "current": current, "archived_view": archived}


def _home_context(
    request: AuthenticatedRequest, *, picked: Preset | None = None
) -> dict[str, object]:
    return {
        "presets": list(presets_for(request.user)),
        "picked_preset": picked,
        **_sidebar_context(request),
    }


@require_GET
def home(request: AuthenticatedRequest) -> HttpResponse:
    """The new-chat page; ``?preset=<id>`` starts it from a preset's deployment and
    instructions. A refused or invalid send comes back here once, with what was typed."""
    picked = preset_picked(user=request.user, preset_id=request.GET.get("preset", ""))
    draft = request.session.pop(NEW_CHAT_DRAFT, None)
    if draft is None:
        initial = {}
        if picked is not None:
            deployment, instructions = preset_start_values(picked, user=request.user)
            initial = {
                "deployment": deployment.pk if deployment else None,
                "instructions": instructions,
            }
        form = NewConversationForm(initial=initial, user=request.user)
    else:
        form = NewConversationForm(draft["data"], user=request.user)
        if form.is_valid() and draft["error"]:
            form.add_error(None, draft["error"])
    return render(
        request, "chat/home.html", {"form": form, **_home_context(request, picked=picked)}
    )


async def _back_to_new_chat(request: AuthenticatedRequest, *, error: str = "") -> HttpResponse:
    """Nothing was kept: the new-chat page shows the form as it was sent, with the reason."""
    data = {name: request.POST.get(name, "") for name in NEW_CHAT_FIELDS}
    await request.session.aset(NEW_CHAT_DRAFT, {"data": data, "error": error})
    return redirect("home")


@require_GET
def conversation_list(request: AuthenticatedRequest) -> HttpResponse:
    current_id = request.GET.get("current")
    context = _sidebar_context(request)
    context["current_id"] = int(current_id) if current_id and current_id.isdigit() else None
    partial = "conversation_items" if request.GET.get("page") else "conversation_list"
    return render(request, f"chat/conversation_list.html#{partial}", context)


@require_POST
async def conversation_create(request: AuthenticatedRequest) -> HttpResponse:
    user = await signed_in_user(request)
    form = await sync_to_async(_bound_new_conversation_form)(request)
    if not form.is_valid():
        return await _back_to_new_chat(request)
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
        return await _back_to_new_chat(request, error=refused.message)
    replies.reply_start(turn)
    return redirect("conversation_detail", conversation_id=turn.conversation.pk)


def _bound_new_conversation_form(request: AuthenticatedRequest) -> NewConversationForm:
    form = NewConversationForm(request.POST, user=request.user)
    form.is_valid()
    return form


def conversation_page(
    request: AuthenticatedRequest,
    conversation: Conversation,
    *,
    draft: str = "",
    draft_attachments: list[int] | None = None,
    error: str | Promise = "",
    status: int = 200,
) -> HttpResponse:
    """The conversation; after a refused send, the composer as it was (text and files)."""
    chat_messages, has_earlier = selectors.branch_page(conversation)
    deployment = selectors.deployment_for(conversation, user=request.user)
    feedback_attach(chat_messages, user_id=request.user.pk)
    in_flight = next((m for m in reversed(chat_messages) if m.in_flight), None)
    # Not "messages": that name belongs to django.contrib.messages (the flash messages).
    context = {
        "conversation": conversation,
        "deployment": deployment,
        "deployment_allowed": deployment is None or deployment.usable_by(request.user),
        "model_choices": selectors.usable_deployments(request.user),
        "chat_messages": chat_messages,
        "has_earlier": has_earlier,
        "in_flight_message": in_flight,
        "draft": draft,
        "draft_attachments": Attachment.objects.for_user(request.user)
        .drafts()
        .filter(pk__in=draft_attachments or []),
        "error": error,
        "new_client_id": services.new_client_id(),
        "instructions_form": InstructionsForm(instance=conversation),
        **_sidebar_context(request, current=conversation),
    }
    return render(request, "chat/conversation_detail.html", context, status=status)


def conversation_or_404(request: AuthenticatedRequest, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.for_user(request.user).select_related("deployment"),
        pk=conversation_id,
    )


@require_GET
def conversation_detail(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    return conversation_page(request, conversation_or_404(request, conversation_id))


@require_GET
def message_list(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """Earlier messages, a page at a time, for "Show earlier messages"."""
    conversation = conversation_or_404(request, conversation_id)
    before = request.GET.get("before", "")
    if not before.isdigit():
        return HttpResponse(gettext("Say which message to show the ones before."), status=400)
    chat_messages, has_earlier = selectors.branch_page(conversation, before=int(before))
    feedback_attach(chat_messages, user_id=request.user.pk)
    return render(
        request,
        "chat/conversation_detail.html#message_batch",
        {"conversation": conversation, "chat_messages": chat_messages, "has_earlier": has_earlier},
    )


@require_http_methods(["GET", "POST"])
def conversation_rename(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = conversation_or_404(request, conversation_id)
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
    if not request.htmx:
        return redirect("conversation_detail", conversation_id=conversation.pk)
    viewing = _viewing(request, conversation.pk)
    context = {"conversation": conversation, "current_id": conversation.pk if viewing else None}
    html = render_to_string(f"{template}#conversation_item", context, request=request)
    if viewing:
        # The page's heading and the tab's title follow the new name at once.
        html += render_to_string(f"{template}#renamed_heading", context, request=request)
    return HttpResponse(html)


def _viewing(request: AuthenticatedRequest, conversation_id: int) -> bool:
    """Whether the htmx request comes from this conversation's own page."""
    page = urlsplit(request.headers.get("HX-Current-URL", "")).path
    return page.rstrip("/").endswith(f"/c/{conversation_id}")


@require_POST
def conversation_instructions(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = conversation_or_404(request, conversation_id)
    form = InstructionsForm(request.POST, instance=conversation)
    template = "chat/conversation_detail.html#instructions"
    if not form.is_valid():
        if not request.htmx:
            errors = " ".join(str(error) for error in form.errors["instructions"])
            return conversation_page(request, conversation, error=errors, status=400)
        # 200, not 400: the page's htmx swaps no error response, and the form must show why.
        return render(request, template, {"conversation": conversation, "instructions_form": form})
    services.conversation_set_instructions(
        conversation=conversation, instructions=form.cleaned_data["instructions"]
    )
    if not request.htmx:
        flash.success(request, gettext("Instructions saved: they apply from your next message."))
        return redirect("conversation_detail", conversation_id=conversation.pk)
    context = {
        "conversation": conversation,
        "instructions_form": InstructionsForm(instance=conversation),
        "saved": True,
    }
    return render(request, template, context)


@require_POST
def conversation_delete(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = conversation_or_404(request, conversation_id)
    services.conversation_delete(conversation=conversation, deleted_by=request.user)
    if request.htmx and not _viewing(request, conversation_id):
        return HttpResponse("")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("home"))
    flash.success(request, gettext("Conversation deleted."))
    return redirect("home")
