"""App roles from the ID token, mirrored into Django groups at every sign-in.

Every role in the ``roles`` claim becomes a group of the same name (so a deployment can be
limited to ``Chat.GPT5`` as well as to a local group); the groups of roles the person no longer
has are left, and groups an administrator gave by hand are kept. ENTRA_ADMIN_ROLE makes the
person staff with the permissions to manage deployments, the ledger and usage, never superuser.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from accounts.models import User

# What the admin role may do in the chat admin, per model.
ADMIN_ROLE_PERMISSIONS = {
    "deployment": ("add", "change", "delete", "view"),
    "storedresponse": ("change", "delete", "view"),
    "tokenusage": ("view",),
    "conversation": ("view",),
    "message": ("view",),
}


def _admin_permissions() -> list[Permission]:
    wanted = Q()
    for model, actions in ADMIN_ROLE_PERMISSIONS.items():
        wanted |= Q(codename__in=[f"{action}_{model}" for action in actions])
    return list(Permission.objects.filter(wanted, content_type__app_label="chat"))


def roles_mirror(*, user: User, roles: list[str]) -> None:
    """Make the user's groups and staff flag follow the roles of this sign-in."""
    previous = set(user.entra_roles or [])
    current = set(roles)
    if gone := previous - current:
        user.groups.remove(*Group.objects.filter(name__in=gone))
    groups = []
    for role in sorted(current):
        group, created = Group.objects.get_or_create(name=role)
        if created and role == settings.ENTRA_ADMIN_ROLE:
            group.permissions.add(*_admin_permissions())
        groups.append(group)
    user.groups.add(*groups)
    user.entra_roles = sorted(current)
    user.is_staff = settings.ENTRA_ADMIN_ROLE in current
    user.is_superuser = False


def roles_revoke(*, user: User) -> None:
    """The user role was taken away in Entra ID: nothing the roles gave stays."""
    roles_mirror(user=user, roles=[])
    user.save(update_fields=["entra_roles", "is_staff", "is_superuser"])
