"""A request that cannot reach the database gets a short 503 page, not a traceback or a hang.

The middleware answers for the views and for the user lookup before them (the session lives in
the database, so that lookup is where most requests first meet a database that is down);
``server_error`` (the 500 handler) answers for the rest, e.g. a session saved after the view.
A form marked with ``keeps_draft_when_unavailable`` comes back on that page with what the person
typed in it, ready to be sent again.
"""

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin
from django.views import defaults

logger = logging.getLogger(__name__)

# Django wraps the driver's errors, the pool's timeout included, in these two.
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
# Never sent back into a page: the token is rendered afresh.
_NOT_KEPT = frozenset({"csrfmiddlewaretoken"})

type View = Callable[..., Any]


def keeps_draft_when_unavailable(field: str) -> Callable[[View], View]:
    """Mark a POST view whose form ``field`` (the person's text) must survive a 503."""

    def mark(view: View) -> View:
        view.draft_field = field  # type: ignore[attr-defined]
        return view

    return mark


def unavailable_response(request: HttpRequest, view: View | None = None) -> HttpResponse:
    if request.headers.get("HX-Request") == "true":
        return _retry_later(render(request, "_unavailable.html", status=503))
    context: dict[str, object] = {}
    draft_field = getattr(view, "draft_field", None)
    if draft_field and request.method == "POST":
        context["draft"] = request.POST.get(draft_field, "")
        context["draft_field"] = draft_field
        context["kept_fields"] = [
            (name, value)
            for name, value in request.POST.items()
            if name != draft_field and name not in _NOT_KEPT
        ]
    return _retry_later(render(request, "503.html", context, status=503))


def _retry_later(response: HttpResponse) -> HttpResponse:
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    def process_view(
        self,
        request: HttpRequest,
        view_func: View,
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not getattr(view_func, "login_required", True):
            return None
        try:
            # The lookup LoginRequiredMiddleware would make next, made here where its failure
            # can be answered; the user is cached on the request, so it is not made twice.
            request.user.is_authenticated  # noqa: B018
        except DATABASE_ERRORS:
            logger.warning("database unavailable while loading the user", exc_info=True)
            return unavailable_response(request, view_func)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        logger.warning("database unavailable in a view", exc_info=exception)
        match = request.resolver_match
        return unavailable_response(request, match.func if match else None)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """The 500 handler: a database error outside any view still gets the 503 page."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        match = request.resolver_match
        return unavailable_response(request, match.func if match else None)
    return defaults.server_error(request, template_name)
