"""A real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock, over HTTP) standing in for
Microsoft Entra ID, and the app pointed at it.

Each test gives its person the claims it needs (``tid``, ``oid``, ``roles``, ``acct``, names);
the provider signs the ID token with its own key, as Entra does. Nothing is mocked on our side:
the app fetches the discovery document and the JWKS, and exchanges the code, over HTTP.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import werkzeug.serving
from django.test import Client
from django.urls import reverse

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "chat-app-client-id"
CLIENT_SECRET = "chat-app-client-secret"  # the local provider's, nothing real


@dataclass
class Provider:
    url: str

    def add_person(
        self,
        *,
        roles: list[str] | None = None,
        tid: str = TENANT,
        name: str = "Ada Lovelace",
        email: str = "ada@contoso.example",
        **claims: Any,
    ) -> str:
        """A person the provider can sign in; returns their ``sub``. Their ``oid`` is
        ``claims["oid"]`` or a new one."""
        sub = f"person-{uuid.uuid4().hex[:12]}"
        body = {
            "tid": tid,
            "oid": claims.pop("oid", str(uuid.uuid4())),
            "roles": ["Chat.User"] if roles is None else roles,
            "name": name,
            "email": email,
            "preferred_username": email,
            **claims,
        }
        requests.put(f"{self.url}/users/{sub}", json=body, timeout=5).raise_for_status()
        return sub

    def set_claims(self, sub: str, **claims: Any) -> None:
        requests.put(f"{self.url}/users/{sub}", json=claims, timeout=5).raise_for_status()

    def approve(self, authorize_url: str, sub: str) -> str:
        """What the person's browser does on the provider's page: sign in as ``sub``. Returns
        the URL the provider sends the browser back to (our callback)."""
        response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text[:500]
        return str(response.headers["Location"])


@contextmanager
def serve_provider(**options: Any) -> Iterator[Provider]:
    from oidc_provider_mock import app

    server = werkzeug.serving.make_server("127.0.0.1", 0, app(**options), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    """The tenant's provider, for the whole session (its signing key stays the same)."""
    with serve_provider(require_nonce=True) as provider:
        yield provider


@pytest.fixture
def entra(settings: Any, oidc_provider: Provider) -> Iterator[Provider]:
    """The app configured for Entra ID sign-in against the local provider."""
    from accounts.entra_config import discovery_forget

    point_app_at(settings, oidc_provider.url)
    yield oidc_provider
    discovery_forget()


def point_app_at(settings: Any, authority: str) -> None:
    from accounts.entra_config import discovery_forget

    discovery_forget()
    settings.ENTRA_TENANT_ID = TENANT
    settings.ENTRA_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.ENTRA_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.ENTRA_AUTHORITY = authority
    settings.ENTRA_ENABLED = True
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if "Entra" not in b]
    settings.AUTHENTICATION_BACKENDS = [*backends, "accounts.entra_backend.EntraBackend"]


def start_sign_in(client: Client, *, next_url: str = "") -> str:
    """Press "Sign in with Microsoft": returns the provider's authorization URL."""
    query = f"?next={next_url}" if next_url else ""
    response = client.get(reverse("entra_sign_in") + query)
    assert response.status_code == 302, response.content[:500]
    return str(response["Location"])


def callback_path(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def sign_in(client: Client, provider: Provider, sub: str, *, next_url: str = "") -> Any:
    """The whole round trip; returns our callback's response."""
    location = provider.approve(start_sign_in(client, next_url=next_url), sub)
    return client.get(callback_path(location))
