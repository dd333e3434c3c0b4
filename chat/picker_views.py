"""The pickers under the composer: the model the conversation's next turn goes to, and, for a
reasoning model, how hard it thinks. Each is changed on its own (htmx POST) and applies from
the next turn; the conversation is reached through its owner's queryset (another's id: 404).
"""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from chat import selectors, services
from chat.forms import ModelPickForm, ReasoningEffortForm
from chat.views import AuthenticatedRequest, conversation_or_404

PAGE = "chat/conversation_detail.html"


def _errors(form: ModelPickForm | ReasoningEffortForm) -> HttpResponse:
    errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
    return HttpResponse(errors, status=400)


@require_POST
def conversation_model(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The composer's model picker: the conversation's next turn goes to the model picked.
    The effort picker follows it: shown for a reasoning model, with that model's efforts."""
    conversation = conversation_or_404(request, conversation_id)
    form = ModelPickForm(request.POST, user=request.user)
    if not form.is_valid():
        return _errors(form)
    services.conversation_switch_model(
        conversation=conversation, deployment=form.cleaned_data["deployment"]
    )
    if not request.headers.get("HX-Request"):
        return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))
    context = {
        "conversation": conversation,
        "deployment": selectors.deployment_for(conversation, user=request.user),
    }
    return HttpResponse(
        render(request, f"{PAGE}#chat_subtitle", context).content
        + render(request, f"{PAGE}#effort_picker", context | {"oob": True}).content
    )


@require_POST
def conversation_effort(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The composer's effort picker: how hard a reasoning model thinks from the next turn
    ("" for the deployment's default)."""
    conversation = conversation_or_404(request, conversation_id)
    deployment = selectors.deployment_for(conversation, user=request.user)
    form = ReasoningEffortForm(request.POST, deployment=deployment)
    if not form.is_valid():
        return _errors(form)
    services.conversation_set_reasoning_effort(
        conversation=conversation, effort=form.cleaned_data["reasoning_effort"]
    )
    if not request.headers.get("HX-Request"):
        return HttpResponseRedirect(reverse("conversation_detail", args=[conversation_id]))
    return render(
        request,
        f"{PAGE}#effort_picker",
        {"conversation": conversation, "deployment": deployment},
    )
