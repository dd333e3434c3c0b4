import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import User
from chat.models import Conversation, Deployment, Message
from chat.simulator.testing import SimulatorServer
from tests.factories import DeploymentFactory

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


def test_conversations_can_be_read_but_not_added_or_edited(
    staff_client: Client, user: User
) -> None:
    conversation = Conversation.objects.create(owner=user, title="Quarterly plan")
    Message.objects.create(conversation=conversation, role=Message.Role.USER, text="Hi there")

    changelist = staff_client.get(reverse("admin:chat_conversation_changelist"))
    detail = staff_client.get(reverse("admin:chat_conversation_change", args=[conversation.pk]))
    add = staff_client.get(reverse("admin:chat_conversation_add"))
    edit = staff_client.post(
        reverse("admin:chat_conversation_change", args=[conversation.pk]), {"title": "Changed"}
    )

    assert changelist.status_code == 200
    assert "Quarterly plan" in changelist.content.decode()
    assert detail.status_code == 200
    assert "Hi there" in detail.content.decode()
    assert add.status_code == 403
    assert edit.status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "Quarterly plan"


def test_messages_are_read_only(staff_client: Client, user: User) -> None:
    conversation = Conversation.objects.create(owner=user)
    message = Message.objects.create(conversation=conversation, role=Message.Role.USER, text="x")

    assert staff_client.get(reverse("admin:chat_message_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:chat_message_add")).status_code == 403
    view = staff_client.get(reverse("admin:chat_message_change", args=[message.pk]))
    assert view.status_code == 200
