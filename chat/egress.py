"""Where the model client may connect, checked on the address it actually dials.

An endpoint's name passed the allow-list when it was saved (chat.validators), but a name can
resolve anywhere, and differently from one lookup to the next. So the model client connects
through ``GuardedBackend``: it resolves the host itself, refuses the connection when any of the
addresses is loopback, private, link-local, multicast, reserved or unspecified, and dials one of
the addresses it checked, never the name again, so that a second DNS answer cannot slip in. TLS
still verifies the certificate against the name, and the Host header stays the name.

Loopback (the local simulator) is permitted only with ALLOW_LOOPBACK_ENDPOINTS, and then only
loopback: private addresses stay refused unless they are in ALLOWED_PRIVATE_NETWORKS (the
subnets of an organisation's Azure Private Endpoints).
"""

import asyncio
import contextlib
import functools
import ipaddress
import socket
from collections.abc import Iterable

import httpcore2
import httpx2
from django.conf import settings
from django.core.exceptions import ValidationError

from chat.validators import Address, is_loopback, validate_endpoint


class EgressRefused(httpcore2.ConnectError):
    """A connection the guard refused; the message says why, for administrators."""


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def address_refusal(address: Address) -> str | None:
    """What kind of address this is when the model client may not connect to it, else None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if is_loopback(address):
        return None if settings.ALLOW_LOOPBACK_ENDPOINTS else "loopback"
    if any(address in network for network in _networks(tuple(settings.ALLOWED_PRIVATE_NETWORKS))):
        return None
    kinds = (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, applies in kinds if applies), None)


def endpoint_refusal(endpoint: str) -> str | None:
    """Why the endpoint may not be used (the rules it was saved under may have changed)."""
    try:
        validate_endpoint(endpoint)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return None


def refusal_in(exc: BaseException) -> str | None:
    """The guard's reason when ``exc`` (an SDK or httpx error) comes from a refused connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EgressRefused):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


async def _resolve(host: str, port: int, seconds: float | None) -> list[Address]:
    with contextlib.suppress(ValueError):
        # An address needs no lookup; other spellings (127.1) are read by the resolver below.
        return [ipaddress.ip_address(host)]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore2.ConnectTimeout(f"resolving {host} took too long") from exc
    except OSError as exc:
        raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface passes it)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        for address in addresses:
            kind = address_refusal(address)
            if kind is not None:
                hint = " (ALLOW_LOOPBACK_ENDPOINTS is off)" if kind == "loopback" else ""
                raise EgressRefused(
                    f"refused to connect to {host}: it resolves to {address}, a {kind} "
                    f"address{hint}; the model client connects only to public addresses"
                )
        error: httpcore2.ConnectError | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                error = exc
        raise error or httpcore2.ConnectError(f"{host} resolves to no address")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport, its connections made through ``GuardedBackend``."""

    def __init__(self, *, limits: httpx2.Limits) -> None:
        ssl_context = httpx2.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # httpx2 takes no network backend, so its pool is built again with one.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(),
        )
