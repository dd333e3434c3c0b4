"""Websockets are accepted only from the site's own origins: scheme, host and port.

Channels' ``AllowedHostsOriginValidator`` compares host names only, so a page served from the
chat's host on another port or scheme (``http://chat.example.org:8080``) could open a socket with
the user's cookie, which the browser sends whatever the port. Here the Origin must be exactly
the origin the socket itself came in on (its scheme, its Host header, which must be an allowed
host), or one of ``WEBSOCKET_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` with its default port made explicit; None when malformed."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.username or parts.password or parts.query or parts.fragment:
        return None
    return Origin(parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme])


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin1"))
    return None


def request_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin the socket came in on: its scheme and its Host header, if that host is one
    this site serves."""
    scheme = _HTTP_SCHEME.get(scope.get("scheme", "ws"), "http")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = _header(scope, b"x-forwarded-proto")
        if forwarded is not None:
            scheme = _HTTP_SCHEME.get(forwarded.split(",")[0].strip().lower(), scheme)
    host_header = _header(scope, b"host")
    if not host_header:
        return None
    domain, port = split_domain_port(host_header.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    try:
        port_number = int(port) if port else _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return Origin(scheme, domain.strip("[]"), port_number)


def trusted_origins() -> frozenset[Origin]:
    parsed = (parse_origin(value) for value in settings.WEBSOCKET_ALLOWED_ORIGINS)
    return frozenset(origin for origin in parsed if origin is not None)


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    origin = parse_origin(raw) if raw else None
    if origin is None:
        return False
    return origin == request_origin(scope) or origin in trusted_origins()


class SiteOriginValidator:
    """ASGI middleware: a websocket from any other origin is refused before it is accepted."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SiteOriginValidator only guards websockets")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
