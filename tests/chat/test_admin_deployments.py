from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client
from django.urls import reverse

from accounts.models import User
from azure_sim.testing import SimulatorServer
from chat.failover import record_failure, record_success
from chat.models import Conversation, Deployment, Message, StoredResponse
from tests.chat.test_tasks import ledger_row
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-RECOGNISABLE-SECRET-7c2e90"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    return SECRET


@pytest.fixture
def staff_client(client: Client, staff_user: User) -> Client:
    client.force_login(staff_user)
    return client


def test_changelist_shows_deployments_and_key_state_never_the_key(
    staff_client: Client, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NORWAY_KEY", raising=False)
    DeploymentFactory(name="Sweden", is_default=True)
    DeploymentFactory(name="Norway", region="norwayeast", api_key_env="NORWAY_KEY")

    response = staff_client.get(reverse("admin:chat_deployment_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Sweden" in html
    assert "swedencentral" in html
    assert "AZURE_OPENAI_API_KEY (set)" in html
    assert "NORWAY_KEY (NOT SET)" in html
    assert secret_key not in html


def test_add_and_change_pages_never_show_the_key(staff_client: Client, secret_key: str) -> None:
    deployment = DeploymentFactory()

    add = staff_client.get(reverse("admin:chat_deployment_add"))
    change = staff_client.get(reverse("admin:chat_deployment_change", args=[deployment.pk]))

    for response in (add, change):
        assert response.status_code == 200
        html = response.content.decode()
        assert 'name="api_key_env"' in html
        assert secret_key not in html


def _form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "GPT-5 Sweden",
        "endpoint": "https://contoso-sweden.openai.azure.com",
        "region": "swedencentral",
        "deployment_name": "gpt5",
        "model": "gpt-5",
        "auth_mode": "api_key",
        "api_key_env": "AZURE_OPENAI_API_KEY",
        "managed_identity_client_id": "",
        "store_policy": "stateful",
        "remote_retention_hours": "720",
        "default_instructions": "",
        "failover_group": "",
        "priority": "100",
        "enabled": "on",
        "is_default": "on",
    }
    data.update(overrides)
    return data


def test_adding_a_default_moves_the_default(staff_client: Client) -> None:
    previous = DeploymentFactory(is_default=True)

    response = staff_client.post(reverse("admin:chat_deployment_add"), _form_data())

    assert response.status_code == 302
    previous.refresh_from_db()
    assert not previous.is_default
    assert Deployment.objects.get(is_default=True).name == "GPT-5 Sweden"


def test_admin_form_refuses_an_unsafe_endpoint(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("admin:chat_deployment_add"), _form_data(endpoint="https://10.0.0.5")
    )

    assert response.status_code == 200
    assert "not an IP address" in response.content.decode()
    assert not Deployment.objects.exists()


def test_non_staff_are_refused(client: Client, user: User) -> None:
    client.force_login(user)

    for url in (
        reverse("admin:chat_deployment_changelist"),
        reverse("admin:chat_deployment_add"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_test_connection_action_reports_region_and_model(
    staff_client: Client, sim_deployment: Deployment
) -> None:
    response = staff_client.post(
        reverse("admin:chat_deployment_changelist"),
        {"action": "test_connection", "_selected_action": [sim_deployment.pk]},
    )

    assert response.status_code == 302
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "answered in" in message
    assert "region swedencentral" in message


def test_test_connection_action_reports_failures(
    staff_client: Client, sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="server_error")

    response = staff_client.post(
        reverse("admin:chat_deployment_changelist"),
        {"action": "test_connection", "_selected_action": [sim_deployment.pk]},
    )

    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "unavailable" in message


def test_admins_see_how_conversations_went_but_never_what_was_said(
    staff_client: Client, user: User
) -> None:
    conversation = Conversation.objects.create(
        owner=user, title="Quarterly plan", instructions="Answer as a pirate"
    )
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, text="Hi there"
    )
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text="Ahoy, the secret figures",
        html="<p>Ahoy, the secret figures</p>",
        status=Message.Status.COMPLETED,
        response_id="resp_visible_to_admins",
        output_tokens=321,
    )

    pages = {
        "list": staff_client.get(reverse("admin:chat_conversation_changelist")),
        "conversation": staff_client.get(
            reverse("admin:chat_conversation_change", args=[conversation.pk])
        ),
        "messages": staff_client.get(reverse("admin:chat_message_changelist")),
        "question": staff_client.get(reverse("admin:chat_message_change", args=[question.pk])),
        "reply": staff_client.get(reverse("admin:chat_message_change", args=[reply.pk])),
        "search": staff_client.get(
            reverse("admin:chat_conversation_changelist"), {"q": "Quarterly"}
        ),
    }

    for name, page in pages.items():
        assert page.status_code == 200, name
        html = page.content.decode()
        for words in ("Quarterly plan", "Answer as a pirate", "Hi there", "secret figures"):
            assert words not in html, f"{words!r} shown on the {name} page"
    assert user.username in pages["list"].content.decode()
    assert f"Conversation {conversation.pk}" in pages["list"].content.decode()
    assert "resp_visible_to_admins" in pages["conversation"].content.decode()
    assert "321" in pages["reply"].content.decode()
    assert "0 results" in pages["search"].content.decode(), "titles are not searchable"


def test_conversations_and_messages_cannot_be_added_or_edited(
    staff_client: Client, user: User
) -> None:
    conversation = Conversation.objects.create(owner=user, title="Quarterly plan")
    message = Message.objects.create(conversation=conversation, role=Message.Role.USER, text="x")

    add = staff_client.get(reverse("admin:chat_conversation_add"))
    edit = staff_client.post(
        reverse("admin:chat_conversation_change", args=[conversation.pk]), {"title": "Changed"}
    )
    add_message = staff_client.get(reverse("admin:chat_message_add"))
    edit_message = staff_client.post(
        reverse("admin:chat_message_change", args=[message.pk]), {"text": "Changed"}
    )

    assert add.status_code == edit.status_code == 403
    assert add_message.status_code == edit_message.status_code == 403
    conversation.refresh_from_db()
    message.refresh_from_db()
    assert (conversation.title, message.text) == ("Quarterly plan", "x")


def test_the_change_page_offers_a_test_connection_button(
    staff_client: Client, sim_deployment: Deployment
) -> None:
    url = reverse("admin:chat_deployment_test_connection", args=[sim_deployment.pk])

    page = staff_client.get(reverse("admin:chat_deployment_change", args=[sim_deployment.pk]))
    response = staff_client.post(url)

    assert f'action="{url}"' in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:chat_deployment_change", args=[sim_deployment.pk])
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "answered in" in message
    assert "region swedencentral" in message
    assert "model gpt-4.1" in message


def test_the_test_connection_button_reports_the_classified_error(
    staff_client: Client, sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    clean_simulator.program_fault(fault="rate_limit", retry_after_ms=2000)

    response = staff_client.post(
        reverse("admin:chat_deployment_test_connection", args=[sim_deployment.pk]), follow=True
    )

    html = response.content.decode()
    assert "rate limited" in html
    assert "rate_limited: 429" in html


def test_the_test_connection_view_takes_posts_from_staff_only(
    client: Client, user: User, sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    url = reverse("admin:chat_deployment_test_connection", args=[sim_deployment.pk])
    client.force_login(user)

    assert client.post(url)["Location"].startswith(reverse("admin:login"))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(url).status_code == 405
    assert (
        client.post(reverse("admin:chat_deployment_test_connection", args=[10**9])).status_code
        == 404
    )
    assert clean_simulator.requests(op="create") == []


def test_the_list_shows_retention_failover_and_recent_health(staff_client: Client) -> None:
    sweden = DeploymentFactory(name="Sweden", failover_group="eu", priority=10)
    norway = DeploymentFactory(name="Norway", failover_group="eu", priority=20)
    france = DeploymentFactory(name="France", remote_retention_hours=48)
    for _ in range(3):
        record_failure(norway, reason="rate_limited")
    record_failure(france, reason="unavailable")
    record_success(sweden)

    html = staff_client.get(reverse("admin:chat_deployment_changelist")).content.decode()

    assert "eu (priority 10)" in html
    assert "eu (priority 20)" in html
    assert "Skipped until" in html
    assert "(rate_limited)" in html
    assert "1 recent failure(s), last unavailable" in html
    assert "OK (last answer" in html
    assert ">48<" in html


def test_a_daily_quota_can_be_set(staff_client: Client) -> None:
    deployment = DeploymentFactory(name="GPT-5 Sweden")

    response = staff_client.post(
        reverse("admin:chat_deployment_change", args=[deployment.pk]),
        _form_data(daily_token_quota="50000"),
    )

    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.daily_token_quota == 50_000


def test_deleting_a_deployment_is_refused_while_azure_may_hold_its_copies(
    staff_client: Client,
) -> None:
    deployment = DeploymentFactory(name="Sweden")
    live = ledger_row(deployment)
    ledger_row(deployment, state=StoredResponse.State.FAILED)
    url = reverse("admin:chat_deployment_delete", args=[deployment.pk])

    page = staff_client.get(url)
    refused = staff_client.post(url, {"post": "yes"})
    bulk = staff_client.post(
        reverse("admin:chat_deployment_changelist"),
        {"action": "delete_selected", "_selected_action": [deployment.pk], "post": "yes"},
    )

    html = page.content.decode()
    assert "Cannot delete deployment" in html
    assert "Azure may still hold 2 stored response(s)" in html
    assert 'value="delete_remote_copies"' in html
    assert refused.status_code == 200
    assert "Azure may still hold 2 stored response(s)" in bulk.content.decode()
    assert Deployment.objects.filter(pk=deployment.pk).exists()
    assert StoredResponse.objects.get(pk=live.pk).state == StoredResponse.State.LIVE


def test_the_offer_queues_everything_on_the_deployment_then_it_can_be_deleted(
    staff_client: Client,
) -> None:
    deployment = DeploymentFactory(name="Sweden")
    rows = [ledger_row(deployment), ledger_row(deployment, state=StoredResponse.State.FAILED)]
    kept = ledger_row(DeploymentFactory())

    offer = staff_client.post(
        reverse("admin:chat_deployment_changelist"),
        {"action": "delete_remote_copies", "_selected_action": [deployment.pk]},
    )

    (message,) = [str(m) for m in get_messages(offer.wsgi_request)]
    assert "2 deletion(s) from Azure queued" in message
    assert StoredResponse.objects.get(pk=kept.pk).state == StoredResponse.State.LIVE
    StoredResponse.objects.filter(pk__in=[row.pk for row in rows]).update(
        state=StoredResponse.State.DELETED
    )
    url = reverse("admin:chat_deployment_delete", args=[deployment.pk])
    assert "Ledger rows of deleted or expired copies: 2" in staff_client.get(url).content.decode()
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    assert not Deployment.objects.filter(pk=deployment.pk).exists()
    assert list(StoredResponse.objects.all()) == [kept]


def test_no_admin_page_ever_shows_the_key(
    staff_client: Client,
    secret_key: str,
    make_sim_deployment: Callable[..., Deployment],
    clean_strict_simulator: SimulatorServer,
) -> None:
    deployment = DeploymentFactory(name="Secret-keyed", failover_group="eu")
    row = ledger_row(deployment, user=UserFactory(username="ada"))
    wrong_key = make_sim_deployment(
        name="Wrong key", server=clean_strict_simulator, api_key_env="AZURE_OPENAI_API_KEY"
    )
    record_failure(deployment, reason="auth_failed")
    today = row.created_at.date()
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["chat"]),
        reverse("admin:chat_deployment_changelist"),
        reverse("admin:chat_deployment_add"),
        reverse("admin:chat_deployment_change", args=[deployment.pk]),
        reverse("admin:chat_deployment_delete", args=[deployment.pk]),
        reverse("admin:chat_deployment_history", args=[deployment.pk]),
        reverse("admin:chat_storedresponse_changelist"),
        reverse("admin:chat_storedresponse_change", args=[row.pk]),
        reverse("admin:chat_conversation_changelist"),
        reverse("admin:chat_conversation_change", args=[row.conversation_id]),
        reverse("admin:chat_message_changelist"),
        reverse("admin:chat_message_change", args=[row.message_id]),
        reverse("admin:chat_tokenusage_changelist") + f"?start={today - timedelta(days=3)}",
    ]
    rendered = [staff_client.get(url) for url in pages]
    # The key goes to the simulator, which refuses it; the error page must not repeat it.
    rendered.append(
        staff_client.post(
            reverse("admin:chat_deployment_test_connection", args=[wrong_key.pk]), follow=True
        )
    )

    for url, response in zip([*pages, "test connection"], rendered, strict=True):
        assert response.status_code == 200, url
        assert secret_key not in response.content.decode(), url
    assert "auth_failed" in rendered[-1].content.decode()


# --- Endpoints and keys ---------------------------------------------------------------------


def test_admin_form_refuses_the_apps_own_secret_as_key_variable(staff_client: Client) -> None:
    for name in ("SECRET_KEY", "DATABASE_URL"):
        response = staff_client.post(
            reverse("admin:chat_deployment_add"), _form_data(api_key_env=name)
        )

        assert response.status_code == 200
        assert f"{name} is one of the app&#x27;s own settings" in response.content.decode()
    assert not Deployment.objects.exists()


def test_admin_form_refuses_a_loopback_address_in_any_spelling(
    staff_client: Client, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    response = staff_client.post(
        reverse("admin:chat_deployment_add"), _form_data(endpoint="https://0177.0.0.1")
    )

    assert response.status_code == 200
    assert "ALLOW_LOOPBACK_ENDPOINTS" in response.content.decode()
    assert not Deployment.objects.exists()


def test_why_the_app_switched_a_deployment_off_is_shown_read_only(staff_client: Client) -> None:
    reason = "Switched off on upgrade: SECRET_KEY is one of the app's own settings"
    deployment = DeploymentFactory(enabled=False, disabled_reason=reason)

    listing = staff_client.get(reverse("admin:chat_deployment_changelist")).content.decode()
    page = staff_client.get(reverse("admin:chat_deployment_change", args=[deployment.pk]))

    assert "SECRET_KEY is one of the app&#x27;s own settings" in listing
    assert "SECRET_KEY is one of the app&#x27;s own settings" in page.content.decode()
    assert 'name="disabled_reason"' not in page.content.decode()


def test_enabling_a_deployment_again_clears_the_reason(staff_client: Client) -> None:
    deployment = DeploymentFactory(enabled=False, disabled_reason="Switched off on upgrade")

    response = staff_client.post(
        reverse("admin:chat_deployment_change", args=[deployment.pk]),
        _form_data(name=deployment.name, is_default=""),
    )

    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.enabled
    assert deployment.disabled_reason == ""


@pytest.mark.parametrize("wrong_key", ["sk-RECOGNISABLE-WRONG-KEY-51d0", "correct.horse.battery"])
def test_a_key_the_endpoint_echoes_is_redacted_in_the_message_and_its_cookie(
    staff_client: Client,
    make_sim_deployment: Callable[..., Deployment],
    clean_echoing_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    wrong_key: str,
) -> None:
    monkeypatch.setenv("SWEDEN_API_KEY", wrong_key)
    deployment = make_sim_deployment(server=clean_echoing_simulator, api_key_env="SWEDEN_API_KEY")

    response = staff_client.post(
        reverse("admin:chat_deployment_test_connection", args=[deployment.pk])
    )

    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    cookie = response.cookies["messages"].value
    stored = CookieStorage(response.wsgi_request)._decode(cookie)
    page = staff_client.get(response["Location"]).content.decode()
    assert "Incorrect API key provided: [redacted]" in message
    assert [str(m) for m in stored] == [message]
    assert clean_echoing_simulator.requests(op="create"), "the key really went to the endpoint"
    for shown in (message, cookie, page):
        assert wrong_key not in shown


def test_test_connection_never_sends_the_apps_own_secret(
    staff_client: Client,
    make_sim_deployment: Callable[..., Deployment],
    clean_echoing_simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_secret = "the-apps-own-secret-key-" + "s" * 40
    monkeypatch.setenv("SECRET_KEY", app_secret)
    # Saved before the rule existed: the gateway checks again when it reads the key.
    deployment = make_sim_deployment(server=clean_echoing_simulator, api_key_env="SECRET_KEY")

    response = staff_client.post(
        reverse("admin:chat_deployment_test_connection", args=[deployment.pk]), follow=True
    )

    html = response.content.decode()
    assert "The app may not use this deployment&#x27;s key variable" in html
    assert app_secret not in html
    assert clean_echoing_simulator.requests() == []


@pytest.mark.parametrize(
    ("model", "effort", "refusal"),
    [
        ("gpt-4.1", "high", "gpt-4.1 is not a reasoning model"),
        ("o4-mini", "minimal", "o4-mini does not take a minimal reasoning effort"),
    ],
)
def test_a_reasoning_effort_only_for_a_model_that_takes_it(
    staff_client: Client, model: str, effort: str, refusal: str
) -> None:
    response = staff_client.post(
        reverse("admin:chat_deployment_add"),
        _form_data(model=model, reasoning_effort=effort),
    )

    assert response.status_code == 200
    assert refusal in response.content.decode()
    assert not Deployment.objects.exists()


def test_a_reasoning_model_keeps_its_default_effort(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("admin:chat_deployment_add"), _form_data(model="gpt-5", reasoning_effort="minimal")
    )

    assert response.status_code == 302
    assert Deployment.objects.get().reasoning_effort == "minimal"
