"""Presets ("assistants"): a deployment and instructions to start a new chat with.

Administrators make the ones offered to everyone in the admin; a person saves their own from a
conversation, and only they see or delete it.
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from accounts.models import User
from chat.models import Conversation, Deployment, Preset
from chat.selectors import deployment_default


def presets_for(user: User) -> QuerySet[Preset]:
    """Everyone's presets first, then the person's own, each by name; not those on a
    deployment limited to groups the person is not in."""
    return (
        Preset.objects.for_user(user)
        .filter(
            Q(deployment=None)
            | Q(deployment__enabled=False)
            | Q(deployment__in=Deployment.objects.usable_by(user))
        )
        .select_related("deployment")
        .order_by(F("owner").asc(nulls_first=True), "name", "pk")
    )


def preset_picked(*, user: User, preset_id: str) -> Preset | None:
    """The preset ``user`` picked by id, if it is one they may pick."""
    if not preset_id.isdigit():
        return None
    return presets_for(user).filter(pk=int(preset_id)).first()


def preset_start_values(preset: Preset, *, user: User) -> tuple[Deployment | None, str]:
    """The deployment and instructions a chat started from ``preset`` gets: its deployment
    while ``user`` may use it, else their default one."""
    deployment = preset.deployment
    if deployment is None or not deployment.usable_by(user):
        deployment = deployment_default(user=user)
    return deployment, preset.instructions


def preset_save_from(*, conversation: Conversation, name: str, description: str = "") -> Preset:
    """The conversation's deployment and instructions, kept as its owner's personal preset."""
    return Preset.objects.create(
        owner=conversation.owner,
        name=name.strip()[:100],
        description=description.strip()[:300],
        deployment=conversation.deployment,
        instructions=conversation.instructions,
    )


def preset_delete(*, preset: Preset) -> None:
    preset.delete()
