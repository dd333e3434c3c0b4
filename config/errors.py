"""Error pages said in words instead of a bare status line."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults


def _back_url(request: HttpRequest) -> str:
    referer = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return "/"


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE (a huge paste into the composer's no-JS form) is
    refused before any of it is read, so none of it can be kept: say so, with the limits.
    Every other bad request keeps Django's own answer."""
    if not isinstance(exception, RequestDataTooBig):
        return defaults.bad_request(request, exception)
    context = {
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "max_upload_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        "back_url": _back_url(request),
    }
    template = "errors/request_too_large.html"
    if request.headers.get("HX-Request"):
        template += "#too_large_notice"
    return render(request, template, context, status=413)


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A styled refusal with a way back. A signed-in person without staff rights who opens the
    admin is told that it needs administrator access (its sign-in page cannot help them)."""
    admin_area = request.path.startswith(reverse("admin:index"))
    return render(request, "errors/forbidden.html", {"admin_area": admin_area}, status=403)
