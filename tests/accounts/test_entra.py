"""Sign-in with Microsoft Entra ID, against a real OpenID Connect provider on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.entra_config import discovery
from accounts.entra_tokens import SignInRefused, validate_id_token
from accounts.models import User
from tests.entra_fixtures import (
    CLIENT_ID,
    TENANT,
    Provider,
    callback_path,
    point_app_at,
    serve_provider,
    sign_in,
    start_sign_in,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get(SESSION_KEY)
    return None if user_id is None else User.objects.get(pk=user_id)


# The sign-in page


def test_without_entra_settings_there_is_no_microsoft_button(client: Client) -> None:
    html = client.get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" not in html
    assert client.get(reverse("entra_sign_in")).status_code == 404


def test_with_entra_settings_the_button_is_shown_beside_the_password_form(
    client: Client, entra: Provider
) -> None:
    html = client.get(reverse("login") + "?next=/c/5/").content.decode()
    assert "Sign in with Microsoft" in html
    assert f'href="{reverse("entra_sign_in")}?next=/c/5/"' in html
    assert 'autocomplete="current-password"' in html


def test_the_authorization_request_carries_pkce_state_and_nonce(
    client: Client, entra: Provider
) -> None:
    authorize = urlsplit(start_sign_in(client))
    params = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}" == entra.url, "from the discovery document"
    assert params["client_id"] == CLIENT_ID
    assert params["response_type"] == "code"
    assert "openid" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) >= 43
    assert len(params["state"]) >= 32
    assert len(params["nonce"]) >= 32
    assert "code_verifier" not in params, "the verifier stays in our session"


# Signing in


def test_a_person_with_the_user_role_signs_in_and_chats(client: Client, entra: Provider) -> None:
    sub = entra.add_person(name="Ada Lovelace", email="ada@contoso.example")
    response = sign_in(client, entra, sub, next_url="/")

    assert response.status_code == 302
    assert response["Location"] == "/"
    user = signed_in_user(client)
    assert user is not None
    assert user.signs_in_with_entra
    assert user.entra_tenant_id == TENANT
    assert user.get_full_name() == "Ada Lovelace"
    assert user.email == "ada@contoso.example"
    assert not user.has_usable_password(), "an Entra account has no local password"
    assert list(user.groups.values_list("name", flat=True)) == ["Chat.User"]
    assert not user.is_staff
    assert user.last_entra_sign_in is not None
    page = client.get("/")
    assert page.status_code == 200
    assert "Signed in as Ada Lovelace" in page.content.decode()
    assert reverse("password_change") not in page.content.decode()
    assert client.get(reverse("password_change")).status_code == 404


def test_the_session_lasts_entra_session_hours_however_active(
    client: Client, entra: Provider, settings: Any
) -> None:
    settings.ENTRA_SESSION_HOURS = 2
    sign_in(client, entra, entra.add_person())
    age = client.session.get_expiry_age()
    assert 2 * 3600 - 60 < age <= 2 * 3600
    client.get("/")
    assert client.session.get_expiry_age() <= age, "activity does not extend it"


def test_a_person_is_known_by_tenant_and_object_id_never_by_email(
    client: Client, entra: Provider
) -> None:
    local = UserFactory(username="ada@contoso.example", email="ada@contoso.example")
    sub = entra.add_person(oid="oid-ada", email="ada@contoso.example")
    sign_in(client, entra, sub)
    ada = signed_in_user(client)
    assert ada is not None
    assert ada.pk != local.pk, "a local account with the same email is not taken over"

    entra.set_claims(
        sub,
        tid=TENANT,
        oid="oid-ada",
        roles=["Chat.User"],
        name="Ada King",
        email="ada@new.example",
    )
    again = Client()
    sign_in(again, entra, sub)
    renamed = signed_in_user(again)
    assert renamed is not None
    assert renamed.pk == ada.pk
    assert renamed.email == "ada@new.example", "name and email are refreshed at each sign-in"
    assert renamed.get_full_name() == "Ada King"

    impostor = entra.add_person(oid="oid-someone-else", email="ada@new.example")
    third = Client()
    sign_in(third, entra, impostor)
    other = signed_in_user(third)
    assert other is not None
    assert other.pk != ada.pk, "the same email from another object id is another person"


def test_the_admin_role_makes_staff_with_chat_permissions_not_superuser(
    client: Client, entra: Provider
) -> None:
    sign_in(client, entra, entra.add_person(roles=["Chat.User", "Chat.Admin"]))
    admin = signed_in_user(client)
    assert admin is not None
    assert admin.is_staff
    assert not admin.is_superuser
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/chat/deployment/").status_code == 200
    assert client.get("/admin/chat/storedresponse/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 403, "not a superuser"

    chatter = Client()
    sign_in(chatter, entra, entra.add_person(roles=["Chat.User"]))
    assert chatter.get("/admin/").status_code in (302, 403)
    assert chatter.get("/admin/chat/deployment/").status_code in (302, 403)


# Refusals


def test_a_person_without_the_user_role_is_told_to_ask_and_gets_no_account(
    client: Client, entra: Provider
) -> None:
    before = User.objects.count()
    response = sign_in(client, entra, entra.add_person(roles=["Something.Else"]))
    assert response.status_code == 403
    assert "Ask your administrator" in response.content.decode()
    assert User.objects.count() == before
    assert signed_in_user(client) is None


def test_a_role_removed_between_two_sign_ins_takes_effect_at_the_next(
    client: Client, entra: Provider
) -> None:
    sub = entra.add_person(oid="oid-bob", roles=["Chat.User", "Chat.Admin"])
    sign_in(client, entra, sub)
    bob = signed_in_user(client)
    assert bob is not None
    assert bob.is_staff

    entra.set_claims(sub, tid=TENANT, oid="oid-bob", roles=["Chat.User"])
    second = Client()
    sign_in(second, entra, sub)
    bob.refresh_from_db()
    assert not bob.is_staff, "the admin role is gone"
    assert list(bob.groups.values_list("name", flat=True)) == ["Chat.User"]

    entra.set_claims(sub, tid=TENANT, oid="oid-bob", roles=[])
    response = sign_in(Client(), entra, sub)
    assert response.status_code == 403
    bob.refresh_from_db()
    assert not bob.groups.exists()
    assert client.get("/").status_code == 302, "the sessions it had are ended"
    assert second.get("/").status_code == 302


def test_local_groups_given_by_an_administrator_are_kept(client: Client, entra: Provider) -> None:
    sub = entra.add_person(oid="oid-carol")
    sign_in(client, entra, sub)
    carol = signed_in_user(client)
    assert carol is not None
    carol.groups.add(Group.objects.create(name="Pilot testers"))
    sign_in(Client(), entra, sub)
    assert set(carol.groups.values_list("name", flat=True)) == {"Chat.User", "Pilot testers"}


def test_another_tenant_is_refused(client: Client, entra: Provider) -> None:
    response = sign_in(client, entra, entra.add_person(tid="99999999-0000-0000-0000-000000000000"))
    assert response.status_code == 403
    assert "its own organisation" in response.content.decode()
    assert signed_in_user(client) is None


@pytest.mark.parametrize(
    "guest_claims", [{"acct": 1}, {"idp": "https://sts.windows.net/another-tenant/"}]
)
def test_guests_are_refused_unless_allowed(
    client: Client, entra: Provider, settings: Any, guest_claims: dict[str, Any]
) -> None:
    sub = entra.add_person(**guest_claims)
    response = sign_in(client, entra, sub)
    assert response.status_code == 403
    assert "Guest accounts" in response.content.decode()
    assert signed_in_user(client) is None

    settings.ENTRA_ALLOW_GUESTS = True
    guest = Client()
    assert sign_in(guest, entra, sub).status_code == 302
    assert signed_in_user(guest) is not None


def test_a_replayed_callback_is_refused(client: Client, entra: Provider) -> None:
    location = entra.approve(start_sign_in(client), entra.add_person())
    assert client.get(callback_path(location)).status_code == 302
    client.logout()
    replay = client.get(callback_path(location))
    assert replay.status_code == 400
    assert "Start again" in replay.content.decode()
    assert signed_in_user(client) is None


def test_a_callback_without_state_is_refused(client: Client, entra: Provider) -> None:
    location = entra.approve(start_sign_in(client), entra.add_person())
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = client.get(reverse("entra_callback") + "?" + urlencode({"code": code}))
    assert response.status_code == 400
    assert signed_in_user(client) is None


def test_a_callback_from_another_browser_is_refused(client: Client, entra: Provider) -> None:
    location = entra.approve(start_sign_in(client), entra.add_person())
    stranger = Client()
    assert stranger.get(callback_path(location)).status_code == 400
    assert signed_in_user(stranger) is None


def test_a_nonce_mismatch_is_refused(client: Client, entra: Provider) -> None:
    authorize = start_sign_in(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    session = client.session
    session["oidc_states"][state]["nonce"] = "not-the-nonce-that-was-sent"
    session.save()
    response = client.get(callback_path(entra.approve(authorize, entra.add_person())))
    assert response.status_code == 403
    assert signed_in_user(client) is None


def test_the_person_declining_at_microsoft_gets_words_not_a_blank(
    client: Client, entra: Provider
) -> None:
    authorize = start_sign_in(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    query = urlencode({"error": "access_denied", "state": state})
    response = client.get(reverse("entra_callback") + "?" + query)
    assert response.status_code == 403
    assert "cancelled or refused" in response.content.decode()
    assert state not in client.session.get("oidc_states", {})


def test_an_expired_token_is_refused(client: Client, settings: Any) -> None:
    with serve_provider(require_nonce=True, access_token_max_age=timedelta(minutes=-5)) as stale:
        point_app_at(settings, stale.url)
        response = sign_in(client, stale, stale.add_person())
        assert response.status_code == 403
        assert signed_in_user(client) is None


@pytest.fixture
def split_discovery(oidc_provider: Provider) -> Iterator[str]:
    """An authority whose discovery document is the tenant's, except that its keys are
    another provider's: tokens the tenant signs do not verify against them."""
    with serve_provider(require_nonce=True) as other:
        fields = requests.get(f"{oidc_provider.url}/.well-known/openid-configuration", timeout=5)
        document = {**fields.json(), "jwks_uri": f"{other.url}/jwks"}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()


def test_a_token_signed_by_another_key_is_refused(
    client: Client, oidc_provider: Provider, split_discovery: str, settings: Any
) -> None:
    point_app_at(settings, split_discovery)
    response = sign_in(client, oidc_provider, oidc_provider.add_person())
    assert response.status_code == 403
    assert signed_in_user(client) is None


def _id_token_for(provider: Provider, *, client_id: str, nonce: str, sub: str) -> str:
    """A real ID token the provider issues to ``client_id``, fetched as that client would."""
    redirect_uri = "http://127.0.0.1/elsewhere/callback"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": "s" * 32,
            "nonce": nonce,
        }
    )
    location = provider.approve(f"{provider.url}/oauth2/authorize?{query}", sub)
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = requests.post(
        f"{provider.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(client_id, "another-apps-secret"),
        timeout=5,
    )
    token.raise_for_status()
    return str(token.json()["id_token"])


def test_a_token_for_another_application_is_refused(entra: Provider) -> None:
    token = _id_token_for(entra, client_id="another-app", nonce="n" * 32, sub=entra.add_person())
    checks = {
        "nonce": "n" * 32,
        "discovery": discovery(entra.url, timeout=5),
        "tenant_id": TENANT,
        "allow_guests": False,
        "timeout": 5,
    }
    with pytest.raises(SignInRefused) as refused:
        validate_id_token(token, client_id=CLIENT_ID, **checks)
    assert refused.value.reason == "wrong_audience"
    claims = validate_id_token(token, client_id="another-app", **checks)
    assert claims["tid"] == TENANT, "the same token passes for the application it was issued to"


def test_an_unreachable_provider_gets_a_page_that_says_so(client: Client, settings: Any) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_port
    point_app_at(settings, f"http://127.0.0.1:{port}")
    response = client.get(reverse("entra_sign_in"))
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()


# Signing out


def test_sign_out_ends_the_session_and_with_entra_sign_out_the_tenants_too(
    client: Client, entra: Provider, settings: Any
) -> None:
    sign_in(client, entra, entra.add_person())
    settings.ENTRA_SIGN_OUT = True
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    onward = urlsplit(response["Location"])
    assert f"{onward.scheme}://{onward.netloc}{onward.path}" == f"{entra.url}/oauth2/end_session"
    params = parse_qs(onward.query)
    assert params["post_logout_redirect_uri"] == ["http://testserver" + reverse("signed_out")]
    assert signed_in_user(client) is None


def test_without_entra_sign_out_signing_out_stays_here(client: Client, entra: Provider) -> None:
    sign_in(client, entra, entra.add_person())
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("signed_out")


# With the password form turned off


def test_local_sign_in_off_leaves_only_microsoft(
    client: Client, entra: Provider, settings: Any, user: User, password: str
) -> None:
    settings.LOCAL_SIGN_IN = False
    html = client.get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" in html
    assert 'name="password"' not in html
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 403
    assert signed_in_user(client) is None
    admin_login = client.get("/admin/login/?next=/admin/")
    assert admin_login.status_code == 302
    assert admin_login["Location"].startswith(reverse("login")), "no second way in"
    client.force_login(user)
    assert client.get(reverse("password_change")).status_code == 404


def test_the_users_admin_shows_where_each_account_comes_from(
    client: Client, entra: Provider, staff_user: User
) -> None:
    sub = entra.add_person(oid="oid-dora", name="Dora Entra", roles=["Chat.User", "Chat.Beta"])
    sign_in(Client(), entra, sub)
    dora = User.objects.get(entra_object_id="oid-dora")
    client.force_login(staff_user)

    listing = client.get("/admin/accounts/user/").content.decode()
    assert "Microsoft Entra ID" in listing
    assert "local password" in listing
    page = client.get(f"/admin/accounts/user/{dora.pk}/change/").content.decode()
    assert TENANT in page
    assert "oid-dora" in page
    assert "Chat.Beta" in page
    assert 'name="entra_object_id"' not in page, "set by sign-in, not editable here"
