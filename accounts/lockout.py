"""Sign-in lock-out (django-axes): whose address a request comes from, how long a lock-out has
left, and the page that says so.

Axes counts failed sign-ins per username and per address (``AXES_LOCKOUT_PARAMETERS``) and
refuses further tries, even with the right password, until the cool-off has passed or staff
unlock it in the admin. These are the three hooks it calls back into.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from accounts.forms import SignInForm
from chat.durations import minutes_text


def _valid_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The address the request came from, as far as the proxies we trust can tell.

    With ``TRUSTED_PROXY_COUNT`` = 0 (the default) that is the peer of the connection. Behind N
    proxies that each append the address they received from to X-Forwarded-For, the client is
    the N-th entry from the right: the entries left of it were written by the client itself and
    prove nothing.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return _valid_address(peer)
    forwarded = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop]
    if not forwarded:
        return _valid_address(peer)
    # A shorter chain did not pass through every trusted proxy; its left-most entry was still
    # written by one of them.
    hop = forwarded[-trusted] if len(forwarded) >= trusted else forwarded[0]
    return _valid_address(hop) or _valid_address(peer)


def _unlocks_at(attempts: list[AccessAttempt], *, limit: int, cool_off: timedelta) -> datetime:
    """When this rule's recent failures drop below the limit: rows age out oldest first, so it
    is when the row that brings the newest ones up to the limit leaves the window."""
    counted = 0
    for attempt in sorted(attempts, key=lambda a: a.attempt_time, reverse=True):
        counted += attempt.failures_since_start
        if counted >= limit:
            unlocks: datetime = attempt.attempt_time + cool_off
            return unlocks
    return timezone.now()


def lockout_remaining(*, username: str, address: str | None) -> timedelta:
    """How long sign-in stays refused for this username or from this address."""
    now = timezone.now()
    # Axes' own settings (made from SIGN_IN_LOCKOUT_MINUTES and SIGN_IN_FAILURE_LIMIT).
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    limit: int = settings.AXES_FAILURE_LIMIT
    matching = Q(username=username)
    if address:
        matching |= Q(ip_address=address)
    recent = list(AccessAttempt.objects.filter(matching, attempt_time__gte=now - cool_off))
    rules = [
        [a for a in recent if a.username == username],
        [a for a in recent if address and a.ip_address == address],
    ]
    latest = max(_unlocks_at(rule, limit=limit, cool_off=cool_off) for rule in rules)
    return max(latest - now, timedelta(0))


def _in_words(remaining: timedelta) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return minutes_text(minutes)


def lockout_response(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> HttpResponse:
    """Our own sign-in page, with the username kept and how long is left, instead of a bare 403.

    Axes calls this with ``(request, response, credentials)`` from synchronous code and with
    ``(request, credentials)`` from asynchronous code; neither argument is needed here.
    """
    username = request.POST.get("username", "")
    remaining = lockout_remaining(username=username, address=client_address(request))
    form = SignInForm(request, initial={"username": username[:150]})
    message = gettext(
        "Too many failed sign-ins for this username or from this address. Sign-in is paused: "
        "try again in %(wait)s, or ask an administrator to unlock it sooner."
    ) % {"wait": _in_words(remaining)}
    next_url = request.POST.get("next") or request.GET.get("next", "")
    context = {"form": form, "lockout_message": message, "next": next_url}
    response = render(request, "account/sign_in.html", context, status=429)
    response["Retry-After"] = str(max(1, math.ceil(remaining.total_seconds())))
    return response
