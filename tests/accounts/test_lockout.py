"""Sign-in throttling: failures per username and per address lock sign-in out for a while."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.urls import reverse

from accounts.lockout import client_address
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 5  # SIGN_IN_FAILURE_LIMIT's default
LOCKED = "Too many failed sign-ins for this username or from this address"


@pytest.fixture(autouse=True)
def fast_hashing(settings) -> None:
    """Nearly every test here checks passwords a dozen times; PBKDF2 takes seconds for that."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(fast_hashing):
    return UserFactory(password=make_password(PASSWORD))


@pytest.fixture
def staff_user(fast_hashing):
    return UserFactory(password=make_password(PASSWORD), is_staff=True, is_superuser=True)


def sign_in(username: str, password: str, *, address: str = "192.0.2.1", **extra):
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": username, "password": password}, **extra)
    return client, response


def assert_locked_out(client: Client, response, *, minutes: int = 15) -> None:
    html = response.content.decode()
    assert response.status_code == 429
    assert LOCKED in html
    assert f"try again in {minutes} minutes" in html
    assert '<h1 id="sign-in-title">Sign in</h1>' in html, "our own page, not a bare refusal"
    assert int(response["Retry-After"]) > (minutes - 1) * 60
    assert SESSION_KEY not in client.session


def test_a_username_is_locked_out_across_addresses(user, password) -> None:
    for number in range(LIMIT - 1):
        _, response = sign_in(user.username, "wrong", address=f"192.0.2.{10 + number}")
        assert response.status_code == 200
        assert "do not match an account" in response.content.decode()

    client, response = sign_in(user.username, "wrong", address="192.0.2.50")
    assert_locked_out(client, response)

    client, response = sign_in(user.username, password, address="198.51.100.7")
    assert_locked_out(client, response)
    assert f'value="{user.username}"' in response.content.decode(), "the username is kept"


def test_an_address_is_locked_out_across_usernames(user, password) -> None:
    for number in range(LIMIT):
        sign_in(f"guess{number}", "wrong", address="203.0.113.9")

    client, response = sign_in(user.username, password, address="203.0.113.9")
    assert_locked_out(client, response)

    _, elsewhere = sign_in(user.username, password, address="203.0.113.10")
    assert elsewhere.status_code == 302, "the same person from another address is not locked"


def test_tries_while_locked_out_do_not_extend_the_lockout(user, password) -> None:
    for _ in range(LIMIT):
        sign_in(user.username, "wrong")
    first = AccessAttempt.objects.get(username=user.username).attempt_time
    for _ in range(3):
        client, response = sign_in(user.username, password)
        assert_locked_out(client, response)
    assert AccessAttempt.objects.get(username=user.username).attempt_time == first


def test_fifty_wrong_passwords_are_not_all_tried(user) -> None:
    responses = [sign_in(user.username, f"guess {n}")[1] for n in range(50)]
    assert [r.status_code for r in responses].count(200) == LIMIT - 1
    assert AccessAttempt.objects.get(username=user.username).failures_since_start == LIMIT


def test_a_successful_sign_in_forgets_earlier_failures(user, password) -> None:
    for _ in range(LIMIT - 1):
        sign_in(user.username, "wrong")
    assert sign_in(user.username, password)[1].status_code == 302
    _, response = sign_in(user.username, "wrong")
    assert response.status_code == 200, "the count started again"


def test_the_limit_and_the_lockout_come_from_settings(user, password, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=40)
    sign_in(user.username, "wrong")
    client, response = sign_in(user.username, "wrong")
    assert_locked_out(client, response, minutes=40)


def test_staff_unlock_in_the_admin_lets_the_person_in(user, password, staff_user) -> None:
    for _ in range(LIMIT):
        sign_in(user.username, "wrong")
    assert sign_in(user.username, password)[1].status_code == 429

    admin = Client()
    admin.force_login(staff_user)
    changelist = reverse("admin:axes_accessattempt_changelist")
    listing = admin.get(changelist).content.decode()
    assert user.username in listing
    assert "Locked Out" in listing
    attempts = AccessAttempt.objects.filter(username=user.username)
    response = admin.post(
        changelist,
        {"action": "unlock", "_selected_action": [str(a.pk) for a in attempts]},
        follow=True,
    )
    assert "Unlocked: 1 failed sign-in record(s) forgotten." in response.content.decode()

    client, response = sign_in(user.username, password)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(user.pk)


def test_the_admin_form_data_of_an_attempt_shows_no_secrets(user, staff_user) -> None:
    client = Client(REMOTE_ADDR="192.0.2.1", enforce_csrf_checks=True)
    client.get(reverse("login"))
    token = client.cookies["csrftoken"].value
    client.post(
        reverse("login"),
        {"username": user.username, "password": "my-real-password", "csrfmiddlewaretoken": token},
    )
    attempt = AccessAttempt.objects.get(username=user.username)
    admin = Client()
    admin.force_login(staff_user)
    page = admin.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "my-real-password" not in html
    assert token not in html


def test_the_admin_sign_in_is_throttled_too(staff_user, password) -> None:
    for _ in range(LIMIT):
        sign_in(staff_user.username, "wrong")
    client = Client(REMOTE_ADDR="192.0.2.1")
    # The admin's own login page only leads to ours; it checks no password itself.
    direct = client.post("/admin/login/", {"username": staff_user.username, "password": password})
    assert direct.status_code == 302
    assert direct["Location"].startswith(reverse("login"))
    response = client.post(
        f"{reverse('login')}?next=/admin/",
        {"username": staff_user.username, "password": password, "next": "/admin/"},
    )
    assert_locked_out(client, response)
    assert 'name="next" value="/admin/"' in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_behind_no_trusted_proxy_forwarded_for_is_ignored(user, password) -> None:
    for number in range(LIMIT):
        sign_in(f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    client, response = sign_in(user.username, password, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert_locked_out(client, response)


def test_behind_a_trusted_proxy_the_forwarded_address_counts(user, password, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for number in range(LIMIT):
        sign_in(
            f"guess{number}",
            "wrong",
            address=proxy,
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )
    client, response = sign_in(
        user.username, password, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.66"
    )
    assert_locked_out(client, response)
    # A client writing its own X-Forwarded-For entry cannot pose as someone else.
    _, spoofed = sign_in(
        user.username, password, address=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.66"
    )
    assert spoofed.status_code == 429
    _, other = sign_in(
        UserFactory(password=make_password(PASSWORD)).username,
        password,
        address=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.67",
    )
    assert other.status_code == 302, "other people behind the same proxy are not locked out"


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.2"),
        (1, "", "10.0.0.2"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.3", "203.0.113.5"),
        (2, "203.0.113.5", "203.0.113.5"),
        (1, "not an address", "10.0.0.2"),
    ],
)
def test_client_address(rf, settings, trusted, forwarded, expected) -> None:
    settings.TRUSTED_PROXY_COUNT = trusted
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
