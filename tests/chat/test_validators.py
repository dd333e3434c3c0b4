from typing import Any

import pytest
from django.core.exceptions import ValidationError

from chat.models import Deployment
from chat.validators import validate_endpoint
from tests.factories import DeploymentFactory


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.openai.azure.com",
        "https://contoso.openai.azure.com/",
        "https://contoso-sweden.cognitiveservices.azure.com:443",
    ],
)
def test_public_https_resources_are_accepted(endpoint: str) -> None:
    validate_endpoint(endpoint)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://contoso.openai.azure.com", "must use https"),
        ("https://user:secret@contoso.openai.azure.com", "must not contain credentials"),
        ("https://:sk-key@contoso.openai.azure.com", "must not contain credentials"),
        ("https://contoso.openai.azure.com/?api-key=abc", "query string"),
        ("https://contoso.openai.azure.com/#x", "query string or fragment"),
        ("https://10.1.2.3", "not an IP address"),
        ("https://[2001:db8::1]", "not an IP address"),
        ("https://8.8.8.8", "not an IP address"),
        ("https://openai-proxy", "public host name"),
        ("https://models.internal", "public host name"),
        ("https://printer.local", "public host name"),
        ("https://contoso.openai.azure.com:99999", "valid URL"),
        ("ftp://contoso.openai.azure.com", "valid URL"),
        ("contoso.openai.azure.com", "valid URL"),
        ("", "valid URL"),
    ],
)
def test_unsafe_or_malformed_endpoints_are_refused(endpoint: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8100", "http://localhost:8100", "http://[::1]:8100"]
)
def test_loopback_is_allowed_only_with_the_setting(endpoint: str, settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True
    validate_endpoint(endpoint)

    settings.ALLOW_LOOPBACK_ENDPOINTS = False
    with pytest.raises(ValidationError, match="ALLOW_LOOPBACK_ENDPOINTS"):
        validate_endpoint(endpoint)


def test_loopback_needs_a_port(settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True
    with pytest.raises(ValidationError, match="port"):
        validate_endpoint("http://127.0.0.1")


def _errors(deployment: Deployment) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        deployment.full_clean(validate_constraints=False, validate_unique=False)
    return raised.value.message_dict


def test_deployment_validation_refuses_models_that_cannot_chat() -> None:
    errors = _errors(DeploymentFactory.build(model="computer-use-preview"))

    assert any("does not answer chat messages" in e for e in errors["model"])


def test_deployment_validation_wants_a_variable_name_not_a_key() -> None:
    errors = _errors(DeploymentFactory.build(api_key_env="sk-1234abcd"))

    assert "never the key itself" in errors["api_key_env"][0]


def test_api_key_deployments_name_their_variable() -> None:
    errors = _errors(DeploymentFactory.build(api_key_env=""))

    assert errors["api_key_env"] == ["Name the environment variable that holds the API key."]


def test_entra_id_deployments_need_no_variable() -> None:
    DeploymentFactory.build(auth_mode=Deployment.AuthMode.ENTRA_ID, api_key_env="").full_clean(
        validate_constraints=False, validate_unique=False
    )


def test_retention_is_at_most_thirty_days() -> None:
    errors = _errors(DeploymentFactory.build(remote_retention_hours=721))

    assert "remote_retention_hours" in errors


def test_unknown_regions_are_refused() -> None:
    errors = _errors(DeploymentFactory.build(region="eastasia"))

    assert "region" in errors
