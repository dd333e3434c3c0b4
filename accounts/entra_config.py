"""Where Microsoft Entra ID lives: the authority, checked at start-up, and its discovery document.

The discovery document (``<authority>/.well-known/openid-configuration``) names the issuer the
ID tokens must carry and the endpoints mozilla-django-oidc talks to; it is fetched on the first
sign-in and kept for an hour, so a key or endpoint Microsoft rotates is picked up without a
restart. Importable from settings: nothing here touches Django's apps.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

DISCOVERY_TTL_SECONDS = 3600

# mozilla-django-oidc's setting names, and the discovery fields that answer them.
_ENDPOINT_SETTINGS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_authority(authority: str) -> None:
    """https only: a sign-in authority over plain http could be impersonated on the network.
    A loopback address may use http (a provider on this machine, as the tests run)."""
    parts = urlsplit(authority)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ImproperlyConfigured(
        f"ENTRA_AUTHORITY must be an https:// URL (http only on a loopback address); "
        f"got {authority!r}."
    )


class DiscoveryFailed(Exception):
    """The authority's discovery document could not be read."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str
    fields: dict[str, Any]

    def setting(self, name: str) -> str | None:
        """The value of a mozilla-django-oidc endpoint setting, or None if it is not one."""
        field = _ENDPOINT_SETTINGS.get(name)
        return None if field is None else str(self.fields.get(field, ""))


_lock = threading.Lock()
_cached: dict[str, tuple[float, Discovery]] = {}


def discovery(authority: str, *, timeout: float) -> Discovery:
    """The authority's discovery document, fetched at most once an hour per process."""
    import requests  # mozilla-django-oidc's own HTTP client

    with _lock:
        hit = _cached.get(authority)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    url = f"{authority}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        fields = response.json()
        found = Discovery(
            issuer=str(fields["issuer"]),
            authorization_endpoint=str(fields["authorization_endpoint"]),
            token_endpoint=str(fields["token_endpoint"]),
            jwks_uri=str(fields["jwks_uri"]),
            end_session_endpoint=str(fields.get("end_session_endpoint", "")),
            fields=fields,
        )
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        raise DiscoveryFailed(f"{url}: {error.__class__.__name__}") from error
    with _lock:
        _cached[authority] = (time.monotonic() + DISCOVERY_TTL_SECONDS, found)
    return found


def discovery_forget() -> None:
    """Drop what was fetched (tests point the authority at a new provider)."""
    with _lock:
        _cached.clear()
