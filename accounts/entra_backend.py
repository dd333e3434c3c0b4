"""Sign-in with Microsoft Entra ID: mozilla-django-oidc's code flow, our checks and our users.

mozilla-django-oidc exchanges the code (with the PKCE verifier) at the token endpoint. We then
validate the ID token ourselves (:mod:`accounts.entra_tokens`: it checks far more than the
library's signature-and-nonce), find the person by ``tid`` + ``oid``, and refuse anyone without
ENTRA_USER_ROLE before an account exists. Claims come from the ID token; there is no call to
the userinfo endpoint (Entra's is Microsoft Graph, and the token already says all we need).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.entra_config import discovery
from accounts.entra_roles import roles_mirror, roles_revoke
from accounts.entra_tokens import SignInRefused, validate_id_token
from accounts.models import User
from accounts.services import user_end_sessions
from accounts.signals import access_revoked
from accounts.sockets import sockets_close_for_user

logger = logging.getLogger(__name__)

NO_ACCESS = gettext_lazy(
    "Your account does not have access to Chat. Ask your administrator to give you the "
    "Chat user role in Microsoft Entra ID."
)


def entra_setting(attr: str, *args: Any) -> Any:
    """mozilla-django-oidc's settings, with the endpoints read from the discovery document."""
    if attr.startswith("OIDC_OP_"):
        found = discovery(settings.ENTRA_AUTHORITY, timeout=settings.ENTRA_HTTP_TIMEOUT)
        value = found.setting(attr)
        if value is not None:
            return value
    return getattr(settings, attr, *args)


class EntraSettings:
    """How the library's classes read their settings: endpoints when first needed (from the
    discovery document), the client id when read (tests change it)."""

    get_settings = staticmethod(entra_setting)

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # the library's attribute name
        return str(settings.ENTRA_CLIENT_ID)


class EntraBackend(EntraSettings, OIDCAuthenticationBackend):  # type: ignore[misc]  # no types
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django instantiates backends on every request that loads a user: the library's own
        # __init__ would fetch the discovery document each time. Endpoints are looked up when
        # a sign-in needs them.
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return str(entra_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return str(settings.ENTRA_CLIENT_SECRET)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        if not token:
            raise SignInRefused("no_id_token")
        return validate_id_token(
            token,
            nonce=kwargs.get("nonce"),
            discovery=discovery(settings.ENTRA_AUTHORITY, timeout=settings.ENTRA_HTTP_TIMEOUT),
            client_id=settings.ENTRA_CLIENT_ID,
            tenant_id=settings.ENTRA_TENANT_ID,
            allow_guests=settings.ENTRA_ALLOW_GUESTS,
            timeout=settings.ENTRA_HTTP_TIMEOUT,
        )

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        roles = [str(role) for role in payload.get("roles") or []]
        existing = User.objects.filter(
            entra_tenant_id=payload["tid"], entra_object_id=payload["oid"]
        ).first()
        if settings.ENTRA_USER_ROLE not in roles:
            if existing is not None:
                _revoke(existing)
            raise SignInRefused("no_user_role", NO_ACCESS)
        with transaction.atomic():
            user = existing or _new_user(payload)
            if not user.is_active:
                raise SignInRefused(
                    "inactive",
                    gettext(
                        "This account has been deactivated. Ask an administrator to restore it."
                    ),
                )
            user.first_name, user.last_name = _names(payload)
            user.email = str(payload.get("email") or payload.get("preferred_username") or "")
            user.last_entra_sign_in = timezone.now()
            roles_mirror(user=user, roles=roles)
            user.save()
        return user


def _new_user(payload: dict[str, Any]) -> User:
    user = User(
        username=f"entra-{payload['oid']}"[:150],
        entra_tenant_id=str(payload["tid"]),
        entra_object_id=str(payload["oid"]),
    )
    user.set_unusable_password()
    user.save()
    return user


def _names(payload: dict[str, Any]) -> tuple[str, str]:
    given, family = payload.get("given_name"), payload.get("family_name")
    if given or family:
        return str(given or "")[:150], str(family or "")[:150]
    return str(payload.get("name") or "")[:150], ""


def _revoke(user: User) -> None:
    """The user role was removed in Entra ID: this account's groups, staff flag, sessions
    and sockets go too, and its replies in flight stop."""
    logger.info("entra sign-in: user %s no longer has the user role", user.pk)
    roles_revoke(user=user)
    user_end_sessions(user=user)
    sockets_close_for_user(user_id=user.pk, reason="role_removed")
    access_revoked.send(sender=User, user=user, reason="role_removed")
