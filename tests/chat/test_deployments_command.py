from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from azure_sim.testing import SimulatorServer
from chat.models import Deployment
from tests.factories import DeploymentFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-RECOGNISABLE-SECRET-4f9a1c"
SWEDEN = [
    "--name",
    "GPT-4.1 Sweden",
    "--endpoint",
    "https://contoso-sweden.openai.azure.com",
    "--region",
    "swedencentral",
    "--deployment",
    "gpt41",
    "--model",
    "gpt-4.1",
]


def deployments(*args: str) -> str:
    out = StringIO()
    call_command("deployments", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_add_creates_a_validated_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)

    output = deployments(
        "add",
        *SWEDEN,
        "--auth",
        "api-key",
        "--api-key-env",
        "AZURE_OPENAI_API_KEY",
        "--stateless",
        "--retention-hours",
        "48",
        "--instructions",
        "Answer in English.",
        "--failover-group",
        "gpt41",
        "--priority",
        "5",
        "--default",
    )

    assert 'Added deployment "GPT-4.1 Sweden"' in output
    deployment = Deployment.objects.get()
    assert deployment.endpoint == "https://contoso-sweden.openai.azure.com"
    assert deployment.region == "swedencentral"
    assert deployment.deployment_name == "gpt41"
    assert deployment.model == "gpt-4.1"
    assert deployment.auth_mode == Deployment.AuthMode.API_KEY
    assert deployment.store_policy == Deployment.StorePolicy.STATELESS
    assert deployment.remote_retention_hours == 48
    assert deployment.default_instructions == "Answer in English."
    assert deployment.failover_group == "gpt41"
    assert deployment.priority == 5
    assert deployment.is_default
    assert deployment.enabled
    assert SECRET not in output


def test_add_with_entra_id(monkeypatch: pytest.MonkeyPatch) -> None:
    deployments("add", *SWEDEN, "--auth", "entra-id", "--managed-identity-client-id", "abc-123")

    deployment = Deployment.objects.get()
    assert deployment.auth_mode == Deployment.AuthMode.ENTRA_ID
    assert deployment.managed_identity_client_id == "abc-123"


def test_add_warns_when_the_key_variable_is_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)

    output = deployments("add", *SWEDEN)

    assert "AZURE_OPENAI_API_KEY is not set" in output


def test_default_moves_from_the_previous_default() -> None:
    previous = DeploymentFactory(is_default=True)

    deployments("add", *SWEDEN, "--default")

    previous.refresh_from_db()
    assert not previous.is_default
    assert Deployment.objects.get(is_default=True).name == "GPT-4.1 Sweden"


def test_refused_model_explains_why() -> None:
    args = [*SWEDEN[:-1], "computer-use-preview"]

    with pytest.raises(CommandError, match="does not answer chat messages"):
        deployments("add", *args)
    assert not Deployment.objects.exists()


def test_bad_endpoint_is_refused_with_the_reason() -> None:
    args = [*SWEDEN]
    args[3] = "http://contoso-sweden.openai.azure.com"

    with pytest.raises(CommandError, match=r"--endpoint: The endpoint must use https\."):
        deployments("add", *args)


def test_bad_region_lists_the_regions() -> None:
    args = [*SWEDEN]
    args[5] = "eastasia"

    with pytest.raises(CommandError) as raised:
        deployments("add", *args)

    assert "--region:" in str(raised.value)
    assert "swedencentral" in str(raised.value)


def test_key_given_instead_of_a_variable_name_is_refused() -> None:
    with pytest.raises(CommandError, match="never the key itself") as raised:
        deployments("add", *SWEDEN, "--api-key-env", SECRET)

    assert not Deployment.objects.exists()
    assert "--api-key-env" in str(raised.value)


def test_add_needs_the_essentials() -> None:
    with pytest.raises(CommandError, match="--endpoint, --region"):
        deployments("add", "--name", "Half", "--deployment", "x", "--model", "gpt-4.1")


def test_duplicate_name_is_refused() -> None:
    DeploymentFactory(name="GPT-4.1 Sweden")

    with pytest.raises(CommandError, match="--name: Deployment with this Display name"):
        deployments("add", *SWEDEN)


def test_update_changes_only_the_given_fields() -> None:
    deployment = DeploymentFactory(name="Old name", priority=100, store_policy="stateful")

    output = deployments(
        "update", "Old name", "--name", "New name", "--priority", "1", "--stateless"
    )

    assert 'Updated deployment "New name"' in output
    updated = Deployment.objects.get(pk=deployment.pk)
    assert updated.name == "New name"
    assert updated.priority == 1
    assert updated.store_policy == Deployment.StorePolicy.STATELESS
    assert updated.endpoint == deployment.endpoint
    assert updated.updated_at > deployment.updated_at


def test_update_validates_like_add() -> None:
    DeploymentFactory(name="Sweden")

    with pytest.raises(CommandError, match="--retention-hours"):
        deployments("update", "Sweden", "--retention-hours", "1000")


def test_unknown_deployment_names_the_known_ones() -> None:
    DeploymentFactory(name="Sweden")

    with pytest.raises(
        CommandError, match=r'No deployment is named "Norway" \(there are: Sweden\)'
    ):
        deployments("update", "Norway", "--priority", "1")


def test_disable_also_gives_up_the_default() -> None:
    DeploymentFactory(name="Sweden", is_default=True)

    output = deployments("disable", "Sweden")

    deployment = Deployment.objects.get()
    assert not deployment.enabled
    assert not deployment.is_default
    assert "no longer the default" in output


def test_update_can_enable_again() -> None:
    DeploymentFactory(name="Sweden", enabled=False)

    deployments("update", "Sweden", "--enable", "--default")

    deployment = Deployment.objects.get()
    assert deployment.enabled
    assert deployment.is_default


def test_list_shows_whether_the_key_is_set_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("NORWAY_KEY", raising=False)
    DeploymentFactory(name="Sweden", is_default=True)
    DeploymentFactory(name="Norway", region="norwayeast", api_key_env="NORWAY_KEY")
    DeploymentFactory(name="Entra", auth_mode=Deployment.AuthMode.ENTRA_ID)

    output = deployments("list")

    lines = output.splitlines()
    assert lines[0].split() == [
        "NAME",
        "MODEL",
        "REGION",
        "DEPLOYMENT",
        "STORE",
        "CREDENTIALS",
        "ON",
        "DEFAULT",
    ]
    sweden = next(line for line in lines if line.startswith("Sweden"))
    assert "AZURE_OPENAI_API_KEY (set)" in sweden
    assert sweden.rstrip().endswith("yes")
    assert "NORWAY_KEY (NOT SET)" in output
    assert "Entra ID" in output
    assert SECRET not in output


def test_list_when_empty() -> None:
    assert "No deployments yet" in deployments("list")


def test_test_prints_latency_region_and_model(
    sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    output = deployments("test", sim_deployment.name)

    assert f'"{sim_deployment.name}" answered in' in output
    assert "region swedencentral" in output
    assert "model gpt-4.1" in output
    assert clean_simulator.requests(op="create")


def test_test_fails_with_the_classified_error(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    clean_simulator.program_fault(fault="content_filter_prompt", category="violence")

    with pytest.raises(CommandError) as raised:
        deployments("test", sim_deployment.name)

    message = str(raised.value)
    assert "content filter (violence)" in message
    assert "content_filtered" in message


def test_test_with_missing_key_variable_names_it_without_a_request(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sim_deployment.api_key_env)

    with pytest.raises(CommandError, match=f"{sim_deployment.api_key_env} is not set"):
        deployments("test", sim_deployment.name)
    assert clean_simulator.requests() == []


# --- Endpoints and keys ---------------------------------------------------------------------


def _with(option: str, value: str) -> list[str]:
    args = list(SWEDEN)
    args[args.index(option) + 1] = value
    return args


def test_add_refuses_a_legacy_spelling_of_loopback_clearly(settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    with pytest.raises(CommandError) as raised:
        deployments("add", *_with("--endpoint", "https://0177.0.0.1"))

    assert "--endpoint: Loopback endpoints" in str(raised.value)
    assert not Deployment.objects.exists()


def test_add_refuses_a_host_outside_the_allow_list() -> None:
    with pytest.raises(CommandError, match=r"--endpoint: .*ALLOWED_ENDPOINT_SUFFIXES"):
        deployments("add", *_with("--endpoint", "https://openai.contoso.example"))


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"])
def test_add_refuses_the_apps_own_secret_as_key_variable(name: str) -> None:
    with pytest.raises(CommandError) as raised:
        deployments("add", *SWEDEN, "--api-key-env", name)

    assert f"--api-key-env: {name} is one of the app's own settings" in str(raised.value)
    assert not Deployment.objects.exists()


def test_test_of_a_saved_legacy_address_fails_clearly_without_connecting(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False
    Deployment.objects.filter(pk=sim_deployment.pk).update(endpoint="https://0177.0.0.1")

    with pytest.raises(CommandError) as raised:
        deployments("test", sim_deployment.name)

    assert "may not connect to this deployment's endpoint" in str(raised.value)
    assert "endpoint_refused" in str(raised.value)
    assert clean_simulator.requests() == []


def test_test_does_not_connect_to_loopback_when_loopback_is_off(
    sim_deployment: Deployment, clean_simulator: SimulatorServer, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    with pytest.raises(CommandError, match="may not connect to this deployment's endpoint"):
        deployments("test", sim_deployment.name)
    assert clean_simulator.requests() == []
