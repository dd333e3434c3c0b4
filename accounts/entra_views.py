"""The two ends of "Sign in with Microsoft": the redirect out, and the callback back in.

The flow is mozilla-django-oidc's (``state``, ``nonce`` and the PKCE verifier kept in the
session, one entry per tab, each usable once). What we add: endpoints from the discovery
document, a plain page for every refusal instead of a redirect or a 400 with no words, and a
session that lasts ENTRA_SESSION_HOURS from sign-in, however active it is.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.entra_backend import EntraSettings, entra_setting
from accounts.entra_config import DiscoveryFailed, discovery
from accounts.entra_tokens import TRY_AGAIN, SignInRefused

logger = logging.getLogger(__name__)

UNREACHABLE = gettext_lazy(
    "Microsoft sign-in cannot be reached right now. Try again in a few minutes; if it keeps "
    "happening, tell your administrator."
)


def refused(request: HttpRequest, refusal: SignInRefused) -> HttpResponse:
    logger.warning("entra sign-in refused: %s", refusal.reason)
    return render(
        request,
        "account/sign_in_refused.html",
        {"message": refusal.message, "no_access": refusal.reason == "no_user_role"},
        status=refusal.status,
    )


class EntraFlow(View):
    """404 while Entra ID sign-in is not configured; every refusal a page with words."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.ENTRA_ENABLED:
            raise Http404("Microsoft Entra ID sign-in is not configured.")
        try:
            response = super().dispatch(request, *args, **kwargs)
        except SignInRefused as refusal:
            return refused(request, refusal)
        except (DiscoveryFailed, requests.RequestException) as error:
            logger.warning("entra sign-in: the provider did not answer: %s", error)
            return refused(request, SignInRefused("unreachable", UNREACHABLE, status=503))
        return response


@method_decorator(login_not_required, name="dispatch")
class EntraSignInView(EntraSettings, EntraFlow, OIDCAuthenticationRequestView):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        # The library reads the endpoint here, before dispatch could turn a failure into a page.
        View.__init__(self, **kwargs)

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:  # the library's attribute name
        return str(entra_setting("OIDC_OP_AUTHORIZATION_ENDPOINT"))

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return str(settings.ENTRA_CLIENT_ID)


@method_decorator(login_not_required, name="dispatch")
class EntraCallbackView(EntraSettings, EntraFlow, OIDCAuthenticationCallbackView):  # type: ignore[misc]
    def get(self, request: HttpRequest) -> HttpResponse:
        state = request.GET.get("state")
        states: dict[str, Any] = request.session.get("oidc_states", {})
        if "error" in request.GET:
            logger.info("entra sign-in: the provider answered %s", request.GET["error"][:100])
            if state in states:
                del states[state]
                request.session.modified = True
            raise SignInRefused(
                "provider_error",
                gettext(
                    "Microsoft did not sign you in (the sign-in was cancelled or refused). "
                    "Start again from the sign-in page."
                ),
            )
        if "code" not in request.GET or not state:
            raise SignInRefused("missing_state", status=400)
        if state not in states:
            # Used already (a replay, a second click) or started in another browser.
            raise SignInRefused("unknown_state", status=400)
        response: HttpResponse = super().get(request)
        return response

    def login_failure(self) -> HttpResponse:
        raise SignInRefused("failed", TRY_AGAIN)

    def login_success(self) -> HttpResponse:
        response: HttpResponse = super().login_success()
        self.request.session.set_expiry(
            timezone.now() + timedelta(hours=settings.ENTRA_SESSION_HOURS)
        )
        return response


def entra_sign_out_url(request: HttpRequest) -> str | None:
    """Where the browser goes after signing out here, when ENTRA_SIGN_OUT asks to end the
    Microsoft session too: the tenant's end-session endpoint, coming back to our page."""
    if not (settings.ENTRA_ENABLED and settings.ENTRA_SIGN_OUT):
        return None
    try:
        endpoint = discovery(
            settings.ENTRA_AUTHORITY, timeout=settings.ENTRA_HTTP_TIMEOUT
        ).end_session_endpoint
    except DiscoveryFailed:
        return None
    if not endpoint:
        return None
    back = request.build_absolute_uri(reverse("signed_out"))
    query = urlencode({"post_logout_redirect_uri": back, "client_id": settings.ENTRA_CLIENT_ID})
    return f"{endpoint}?{query}"
