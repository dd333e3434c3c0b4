"""Validation of Azure OpenAI resource endpoints.

The app sends users' text and API keys to these URLs, so an endpoint must be a public https
resource: no credentials in the URL, no IP literals, no private or link-local hosts. Loopback
(the local simulator) is allowed only when ALLOW_LOOPBACK_ENDPOINTS is on: by default in
development, off in production unless an administrator sets it.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home", ".intranet")


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def validate_endpoint(value: str) -> None:
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError(
            "Enter a valid URL such as https://myresource.openai.azure.com."
        ) from exc
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in {"http", "https"}:
        raise ValidationError("Enter a valid URL such as https://myresource.openai.azure.com.")
    if parts.username or parts.password:
        raise ValidationError(
            "The endpoint must not contain credentials; name the environment variable that "
            "holds the API key instead."
        )
    if parts.query or parts.fragment:
        raise ValidationError("The endpoint must not contain a query string or fragment.")
    if _is_loopback(host):
        if not settings.ALLOW_LOOPBACK_ENDPOINTS:
            raise ValidationError(
                "Loopback endpoints (the local simulator) are switched off on this server "
                "(ALLOW_LOOPBACK_ENDPOINTS)."
            )
        if port is None and parts.scheme == "http":
            raise ValidationError("Give the simulator's port, e.g. http://127.0.0.1:8100.")
        return
    if parts.scheme != "https":
        raise ValidationError("The endpoint must use https.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValidationError(
            "Use the resource's host name (https://<resource>.openai.azure.com), not an IP address."
        )
    if "." not in host or host.endswith(_PRIVATE_SUFFIXES):
        raise ValidationError("The endpoint must be a public host name, not a private one.")
