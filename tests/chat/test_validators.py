import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from chat.models import Deployment
from chat.validators import app_environment_variables, validate_api_key_env, validate_endpoint
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
        ("https://openai-proxy", "ALLOWED_ENDPOINT_SUFFIXES"),
        ("https://models.internal", "ALLOWED_ENDPOINT_SUFFIXES"),
        ("https://printer.local", "ALLOWED_ENDPOINT_SUFFIXES"),
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


@pytest.mark.parametrize(
    ("endpoint", "canonical"),
    [
        ("http://0177.0.0.1:8100", "127.0.0.1"),
        ("http://127.1:8100", "127.0.0.1"),
        ("http://localhost.:8100", "localhost"),
        ("http://[0:0:0:0:0:0:0:1]:8100", "::1"),
    ],
)
def test_allowed_loopback_is_written_the_one_way(
    endpoint: str, canonical: str, settings: Any
) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True

    with pytest.raises(ValidationError, match=f"Write the host as {re.escape(canonical)}"):
        validate_endpoint(endpoint)


def test_loopback_needs_a_port(settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = True
    with pytest.raises(ValidationError, match="port"):
        validate_endpoint("http://127.0.0.1")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.1",
        "https://0x7f.0.0.1",
        "https://0177.0.0.1",
        "https://2130706433",
        "https://127.0.0.1.",
        "https://localhost.",
        "https://LOCALHOST:8100",
        "http://simulator.localhost:8100",
        "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width letters
        "https://[::ffff:127.0.0.1]",
        "https://[0:0:0:0:0:0:0:1]",
    ],
)
def test_every_spelling_of_loopback_is_loopback(endpoint: str, settings: Any) -> None:
    settings.ALLOW_LOOPBACK_ENDPOINTS = False

    with pytest.raises(ValidationError, match="ALLOW_LOOPBACK_ENDPOINTS"):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.1",  # 10.0.0.1
        "https://0xa9fea9fe",  # 169.254.169.254, the cloud metadata service
        "https://0251.0376.0251.0376",  # the same, in octal
        "https://[fe80::1%25eth0]",
        "https://[::ffff:10.0.0.1]",
    ],
)
def test_legacy_and_ipv6_forms_of_addresses_are_addresses(endpoint: str) -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://example.com",
        "https://openai.azure.com.evil.example",
        "https://contoso-openai.azure.com.example",
        "https://contosoopenai.azure.com",
        "https://contoso.azure-api.net",
    ],
)
def test_only_azure_hosts_are_allowed_by_default(endpoint: str) -> None:
    with pytest.raises(ValidationError, match="ALLOWED_ENDPOINT_SUFFIXES"):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.openai.azure.com",
        "https://contoso.cognitiveservices.azure.com",
        "https://contoso.services.ai.azure.com",
        "https://CONTOSO.openai.azure.com/",
    ],
)
def test_the_three_azure_domains_are_allowed(endpoint: str) -> None:
    validate_endpoint(endpoint)


def test_a_gateway_is_allowed_by_its_suffix(settings: Any) -> None:
    settings.ALLOWED_ENDPOINT_SUFFIXES = [".azure-api.net", "gateway.contoso.com"]

    validate_endpoint("https://contoso.azure-api.net")
    validate_endpoint("https://gateway.contoso.com")
    validate_endpoint("https://eu.gateway.contoso.com")
    for refused in ("https://evilazure-api.net", "https://gateway.contoso.com.example"):
        with pytest.raises(ValidationError, match="ALLOWED_ENDPOINT_SUFFIXES"):
            validate_endpoint(refused)


def test_an_allowed_host_is_written_the_one_way(settings: Any) -> None:
    with pytest.raises(ValidationError, match=r"Write the host as contoso\.openai\.azure\.com"):
        validate_endpoint("https://contoso.openai.azure.com.")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.openai.azure.com\u3002",
        "https://127.0.0.1 x",
        "https://a..openai.azure.com",
    ],
)
def test_hosts_the_resolver_would_read_otherwise_are_invalid(endpoint: str) -> None:
    with pytest.raises(ValidationError, match=r"valid URL|Write the host as"):
        validate_endpoint(endpoint)


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "AZURE_OPENAI_TOKEN_SCOPE",
        "AZURE_CLIENT_SECRET",
        "ENTRA_CLIENT_SECRET",
    ],
)
def test_the_apps_own_settings_cannot_hold_a_deployments_key(name: str, settings: Any) -> None:
    settings.API_KEY_ENV_PATTERN = r"[A-Z_]+"  # even a pattern that lets every name through

    with pytest.raises(ValidationError, match="one of the app's own settings"):
        validate_api_key_env(name)


def test_every_variable_the_settings_read_is_the_apps_own() -> None:
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "API_KEY_ENV_PATTERN"} <= (
        app_environment_variables()
    )
    assert "AZURE_OPENAI_API_KEY" not in app_environment_variables()


@pytest.mark.parametrize("name", ["HOME", "PATH", "NORWAY_KEY", "API_KEY_BACKUP", "OPENAI_TOKEN"])
def test_key_variables_are_named_like_keys(name: str) -> None:
    with pytest.raises(ValidationError, match="API_KEY_ENV_PATTERN"):
        validate_api_key_env(name)


@pytest.mark.parametrize(
    "name", ["AZURE_OPENAI_API_KEY", "AZURE_OPENAI_SWEDEN", "SIMULATOR_API_KEY", "NORWAY_API_KEY"]
)
def test_names_like_keys_are_accepted(name: str) -> None:
    validate_api_key_env(name)


def test_the_key_variable_pattern_is_a_setting(settings: Any) -> None:
    settings.API_KEY_ENV_PATTERN = r"LLM_KEY_[A-Z]+"

    validate_api_key_env("LLM_KEY_SWEDEN")
    with pytest.raises(ValidationError, match="LLM_KEY_"):
        validate_api_key_env("AZURE_OPENAI_API_KEY")


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


def test_deployment_validation_refuses_the_apps_secrets_as_key_variable() -> None:
    errors = _errors(DeploymentFactory.build(api_key_env="SECRET_KEY"))

    assert "one of the app's own settings" in errors["api_key_env"][0]


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
