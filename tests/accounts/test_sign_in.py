import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_sign_in(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/" in response["Location"]


def test_sign_in_page_is_our_own(client: Client) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="sign-in-title">Sign in</h1>' in html
    assert 'autocomplete="current-password"' in html
    assert "Django administration" not in html


def test_sign_in_with_right_password_reaches_the_app(client: Client, user, password) -> None:
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_KEY] == str(user.pk)


def test_wrong_password_is_refused_with_a_clear_message(client: Client, user) -> None:
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_deactivated_user_cannot_sign_in(client: Client, user, password) -> None:
    user.is_active = False
    user.save()
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_deactivating_a_user_ends_their_open_sessions(client: Client, user, other_user) -> None:
    client.force_login(user)
    other = Client()
    other.force_login(other_user)
    assert client.get("/").status_code == 200

    user.is_active = False
    user.save()

    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert other.get("/").status_code == 200, "other users' sessions are untouched"


def test_sign_out_needs_post_and_ends_the_session(client: Client, user) -> None:
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"), follow=True)
    assert response.redirect_chain == [(reverse("signed_out"), 302)]
    assert "You are signed out" in response.content.decode()
    assert client.get("/").status_code == 302


def test_password_change(client: Client, user, password) -> None:
    client.force_login(user)
    new_password = "a new and much longer passphrase"
    response = client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)


def test_password_change_needs_sign_in(client: Client) -> None:
    response = client.get(reverse("password_change"))
    assert response.status_code == 302


def test_staff_reach_the_admin_and_others_do_not(client: Client, user, staff_user) -> None:
    client.force_login(user)
    assert client.get("/admin/", follow=True).status_code == 403
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == 200


def test_the_admin_signs_in_through_our_page(client: Client, staff_user, password) -> None:
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/account/sign-in/?next=/admin/"
    response = client.post(
        "/account/sign-in/?next=/admin/",
        {"username": staff_user.username, "password": password, "next": "/admin/"},
    )
    assert response["Location"] == "/admin/"


def test_no_template_comment_leaks_into_the_page(client: Client) -> None:
    """Django's {# #} is one line only: a longer one is printed as text on every page."""
    html = client.get(reverse("login")).content.decode()
    assert "{#" not in html
    assert "#}" not in html
    assert "{% comment" not in html
