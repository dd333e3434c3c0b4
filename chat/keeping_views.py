"""Keeping one's work: export, pin and archive, feedback on replies, personal presets.

Every view reaches the person's rows through their own querysets: another person's id is a 404.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from chat import exports, presets, sidebar
from chat.feedback import FeedbackRefused, feedback_give
from chat.forms import SearchForm
from chat.keeping_forms import FeedbackForm, PresetSaveForm
from chat.models import Conversation, Preset
from chat.views import AuthenticatedRequest

EXPORT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
}


def _owned(request: AuthenticatedRequest, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.for_user(request.user).select_related("deployment"),
        pk=conversation_id,
    )


def _errors_text(form: Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _download(content: str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@require_GET
def conversation_export(
    request: AuthenticatedRequest, conversation_id: int, extension: str
) -> HttpResponse:
    if extension not in EXPORT_TYPES:
        raise Http404("No such export format.")
    conversation = _owned(request, conversation_id)
    if extension == "md":
        content = exports.conversation_markdown(conversation)
    else:
        content = exports.conversation_json(conversation)
    return _download(
        content,
        filename=exports.export_filename(conversation, extension),
        content_type=EXPORT_TYPES[extension],
    )


@require_GET
def account_export(request: AuthenticatedRequest) -> HttpResponse:
    """All of the person's conversations, archived ones included, as one JSON file."""
    content = exports.account_json(Conversation.objects.for_user(request.user))
    return _download(
        content, filename=exports.account_filename(), content_type=EXPORT_TYPES["json"]
    )


def _sidebar_list(request: AuthenticatedRequest) -> HttpResponse:
    """The sidebar's list again, as the page showed it (search, archived view, current)."""
    query = SearchForm(request.POST).query()
    archived = request.POST.get("view") == "archived"
    current = request.POST.get("current", "")
    context = {
        "page": sidebar.sidebar_page(owner=request.user, query=query, archived=archived, number=1),
        "query": query,
        "archived_view": archived,
        "current_id": int(current) if current.isdigit() else None,
    }
    return render(request, "chat/conversation_list.html#conversation_list", context)


@require_POST
def conversation_pin(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _owned(request, conversation_id)
    sidebar.conversation_pin(conversation=conversation, pinned=request.POST.get("pinned") == "1")
    if request.htmx:
        return _sidebar_list(request)
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
def conversation_archive(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _owned(request, conversation_id)
    archived = request.POST.get("archived") == "1"
    sidebar.conversation_archive(conversation=conversation, archived=archived)
    if request.htmx:
        return _sidebar_list(request)
    flash.success(
        request,
        gettext("Conversation archived.") if archived else gettext("Conversation restored."),
    )
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
def message_feedback(
    request: AuthenticatedRequest, conversation_id: int, message_id: int
) -> HttpResponse:
    conversation = _owned(request, conversation_id)
    message = get_object_or_404(conversation.messages.all(), pk=message_id)
    form = FeedbackForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            message.my_feedback = feedback_give(  # type: ignore[attr-defined]
                user=request.user,
                message=message,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
                share=form.cleaned_data["share"],
            )
        except FeedbackRefused as refused:
            form.add_error(None, str(refused))
            status = 409
    else:
        status = 400
    if not request.htmx:
        if status == 200:
            flash.success(request, gettext("Thank you for the feedback."))
        else:
            flash.error(
                request, " ".join(str(e) for errors in form.errors.values() for e in errors)
            )
        return redirect(
            reverse("conversation_detail", args=[conversation.pk]) + f"#message-{message.pk}"
        )
    context = {"message": message, "feedback_form": form, "just_rated": status == 200}
    return render(request, "chat/_feedback.html", context, status=status)


@require_POST
def preset_save(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _owned(request, conversation_id)
    form = PresetSaveForm(request.POST)
    if form.is_valid():
        presets.preset_save_from(
            conversation=conversation,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
        )
        flash.success(
            request,
            gettext("Saved “%(name)s” as your preset.") % {"name": form.cleaned_data["name"]},
        )
    else:
        flash.error(request, _errors_text(form))
    return redirect("conversation_detail", conversation_id=conversation.pk)


@require_POST
def preset_delete(request: AuthenticatedRequest, preset_id: int) -> HttpResponse:
    preset = get_object_or_404(Preset.objects.owned_by(request.user), pk=preset_id)
    presets.preset_delete(preset=preset)
    if request.htmx:
        return HttpResponse("")
    flash.success(request, gettext("Preset deleted."))
    return redirect("home")
