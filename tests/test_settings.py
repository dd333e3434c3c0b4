"""Production mode is checked in fresh processes: settings are read once, at import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET = "x" * 20 + "-production-secret-for-the-deploy-check-only-" + "y" * 20


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean_env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_DEBUG", "DATABASE_URL", "REDIS_URL"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_secret_key() -> None:
    result = _manage("check", DJANGO_DEBUG="false", ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    result = _manage("check", DJANGO_DEBUG="false", SECRET_KEY=PRODUCTION_SECRET)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_production_refuses_a_wildcard_host() -> None:
    result = _manage("check", DJANGO_DEBUG="false", SECRET_KEY=PRODUCTION_SECRET, ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "may not contain '*'" in result.stderr


def test_deploy_check_is_clean_in_production_mode() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="false",
        SECRET_KEY=PRODUCTION_SECRET,
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("debug", ["true", "false"])
def test_logs_never_carry_an_api_key(debug: str) -> None:
    code = (
        "import logging; logging.getLogger('chat').warning("
        "'upstream said %s', 'api-key: abc123secret Authorization: Bearer eyJhbGciOi.xyz')"
    )
    result = _manage(
        "shell",
        "-c",
        code,
        DJANGO_DEBUG=debug,
        SECRET_KEY=PRODUCTION_SECRET,
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "abc123secret" not in result.stderr
    assert "eyJhbGciOi" not in result.stderr
    assert "[redacted]" in result.stderr
    if debug == "false":
        assert result.stderr.strip().splitlines()[-1].startswith("{")


ENTRA = {
    "ENTRA_TENANT_ID": "11111111-2222-3333-4444-555555555555",
    "ENTRA_CLIENT_ID": "client",
    "ENTRA_CLIENT_SECRET": "secret",
}
SHOW_BACKENDS = (
    "from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS); "
    "print(settings.ENTRA_AUTHORITY)"
)


def test_entra_sign_in_defaults_to_the_tenants_authority_beside_passwords() -> None:
    result = _manage("shell", "-c", SHOW_BACKENDS, **ENTRA)
    assert result.returncode == 0, result.stderr
    assert "django.contrib.auth.backends.ModelBackend" in result.stdout
    assert "accounts.entra_backend.EntraBackend" in result.stdout
    assert f"https://login.microsoftonline.com/{ENTRA['ENTRA_TENANT_ID']}/v2.0" in result.stdout


def test_local_sign_in_off_removes_the_password_backend() -> None:
    result = _manage("shell", "-c", SHOW_BACKENDS, LOCAL_SIGN_IN="false", **ENTRA)
    assert result.returncode == 0, result.stderr
    assert "ModelBackend" not in result.stdout
    assert "accounts.entra_backend.EntraBackend" in result.stdout


def test_local_sign_in_off_without_entra_refuses_to_start() -> None:
    result = _manage("check", LOCAL_SIGN_IN="false")
    assert result.returncode != 0
    assert "LOCAL_SIGN_IN=false needs Microsoft Entra ID" in result.stderr


@pytest.mark.parametrize(
    ("authority", "accepted"),
    [
        ("http://login.example.org/tenant/v2.0", False),
        ("ftp://login.example.org", False),
        ("http://127.0.0.1:8123", True),
        ("http://localhost:8123", True),
        ("https://login.microsoftonline.us/tenant/v2.0", True),
    ],
)
def test_the_authority_is_https_except_on_loopback(authority: str, accepted: bool) -> None:
    result = _manage("check", ENTRA_AUTHORITY=authority, **ENTRA)
    assert (result.returncode == 0) is accepted, result.stderr
    if not accepted:
        assert "ENTRA_AUTHORITY must be an https:// URL" in result.stderr
