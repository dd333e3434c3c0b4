"""Validation of a deployment's connection: its endpoint, and the variable that holds its key.

The app sends users' text and an API key to the endpoint, so an endpoint must be an allowed
host: Azure OpenAI's own domains, or an organisation's gateway (API Management, say) listed in
ALLOWED_ENDPOINT_SUFFIXES. The host is read the way the resolver will read it (IDNA, a
trailing dot, IPv6 brackets, the legacy IPv4 forms ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``),
so no spelling of an address passes for a name. Loopback (the local simulator) is allowed only
with ALLOW_LOOPBACK_ENDPOINTS: on by default in development, off in production. Where a name
really leads is checked again on every connection (chat.egress).

The key variable's value is sent to the endpoint as a bearer token, so the variable must be
meant for that: its name matches API_KEY_ENV_PATTERN, and it is none of the variables the app
reads for itself (SECRET_KEY, DATABASE_URL, ...).
"""

import functools
import importlib
import ipaddress
import os
import re
import socket
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address

AZURE_ENDPOINT_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_INVALID_URL = gettext_lazy("Enter a valid URL such as https://myresource.openai.azure.com.")

# Secrets that the app's libraries read from the environment on their own (azure-identity's
# EnvironmentCredential) or that sign-in with Entra ID uses; settings.py's reads are found in
# its source (app_environment_variables).
_LIBRARY_SECRETS = frozenset(
    {
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_PASSWORD",
        "ENTRA_CLIENT_SECRET",
    }
)
_ENV_READ = re.compile(
    r"""(?:\benv(?:\.\w+)?\(|os\.getenv\(|os\.environ(?:\.get\(|\[))\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def _address(name: str) -> Address | None:
    """The address a numeric host stands for, in every form the resolver accepts."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    try:
        # inet_aton is what the C resolver uses for numbers: 127.1, 0x7f.0.0.1, 0177.0.0.1.
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def canonical_host(hostname: str) -> str | Address:
    """The host as the resolver sees it: an address, or a lower-case ASCII name.

    Raises ``ValueError`` for anything that is neither.
    """
    if ":" in hostname:
        return ipaddress.ip_address(hostname)
    try:
        # IDNA folds full-width letters and ideographic full stops into plain ASCII.
        name = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(hostname) from exc
    name = name.removesuffix(".")
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(hostname)
    return _address(name) or name


def is_loopback(host: str | Address) -> bool:
    if isinstance(host, str):
        return host == "localhost" or host.endswith(".localhost")
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        host = host.ipv4_mapped
    return host.is_loopback


def is_loopback_endpoint(endpoint: str) -> bool:
    try:
        return is_loopback(canonical_host(urlsplit(endpoint.strip()).hostname or ""))
    except ValueError:
        return False


def _allowed_suffixes() -> list[str]:
    entries = (*AZURE_ENDPOINT_SUFFIXES, *settings.ALLOWED_ENDPOINT_SUFFIXES)
    return [entry.strip().lower().strip(".") for entry in entries if entry.strip(". ")]


def is_allowed_name(name: str) -> bool:
    return any(name == domain or name.endswith(f".{domain}") for domain in _allowed_suffixes())


def _validate_spelling(parts: SplitResult, host: str | Address) -> None:
    # The endpoint is stored as written and used as written: it must be the canonical form.
    if str(host) != parts.hostname:
        raise ValidationError(gettext("Write the host as %(host)s.") % {"host": host})


def _validate_loopback(parts: SplitResult, host: str | Address) -> None:
    if not settings.ALLOW_LOOPBACK_ENDPOINTS:
        raise ValidationError(
            gettext(
                "Loopback endpoints (the local simulator) are switched off on this server "
                "(ALLOW_LOOPBACK_ENDPOINTS)."
            )
        )
    _validate_spelling(parts, host)
    if parts.port is None and parts.scheme == "http":
        raise ValidationError(gettext("Give the simulator's port, e.g. http://127.0.0.1:8100."))


def validate_endpoint(value: str) -> None:
    try:
        parts = urlsplit(value.strip())
        _ = parts.port  # a port out of range raises ValueError
        host = canonical_host(parts.hostname or "")
    except ValueError as exc:
        raise ValidationError(_INVALID_URL) from exc
    if parts.scheme not in {"http", "https"}:
        raise ValidationError(_INVALID_URL)
    if parts.username or parts.password:
        raise ValidationError(
            gettext(
                "The endpoint must not contain credentials; name the environment variable "
                "that holds the API key instead."
            )
        )
    if parts.query or parts.fragment:
        raise ValidationError(gettext("The endpoint must not contain a query string or fragment."))
    if is_loopback(host):
        _validate_loopback(parts, host)
        return
    if parts.scheme != "https":
        raise ValidationError(gettext("The endpoint must use https."))
    if not isinstance(host, str):
        raise ValidationError(
            gettext(
                "Use the resource's host name (https://<resource>.openai.azure.com), "
                "not an IP address."
            )
        )
    _validate_spelling(parts, host)
    if not is_allowed_name(host):
        raise ValidationError(
            gettext(
                "The endpoint must be an Azure OpenAI resource (*.openai.azure.com, "
                "*.cognitiveservices.azure.com, *.services.ai.azure.com) or a gateway listed "
                "in ALLOWED_ENDPOINT_SUFFIXES."
            )
        )


@functools.cache
def app_environment_variables() -> frozenset[str]:
    """Every variable the app reads for itself.

    Found in the settings module's source, so a setting is covered the day it is added.
    """
    # The module Django was configured from (settings overridden in tests name none).
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")
    source_file = importlib.import_module(module).__file__
    source = Path(source_file).read_text() if source_file else ""
    return frozenset(_ENV_READ.findall(source)) | _LIBRARY_SECRETS


def key_variable_problem(name: str) -> str | None:
    """Why ``name`` may not hold a deployment's key, or None when it may."""
    if name in app_environment_variables():
        return gettext(
            "%(name)s is one of the app's own settings; name a variable that holds only this "
            "deployment's key."
        ) % {"name": name}
    if not re.fullmatch(settings.API_KEY_ENV_PATTERN, name):
        return gettext(
            "%(name)s is not named like a key variable: the name must match "
            "API_KEY_ENV_PATTERN (%(pattern)s), e.g. AZURE_OPENAI_API_KEY or SWEDEN_API_KEY."
        ) % {"name": name, "pattern": settings.API_KEY_ENV_PATTERN}
    return None


def validate_api_key_env(value: str) -> None:
    problem = key_variable_problem(value)
    if problem is not None:
        raise ValidationError(problem)
