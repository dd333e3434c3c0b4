"""Sign-in required everywhere, said in a way htmx understands; and the person's language."""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils import translation
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, except toward htmx: a fragment request from a page
    whose session has ended gets ``HX-Redirect`` to the sign-in page, so the whole page goes
    there, instead of the sign-in page being swapped into the fragment's place."""

    # The stubs promise a redirect; an htmx answer is a 200 carrying HX-Redirect instead.
    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponse:
        if request.headers.get("HX-Request") != "true":
            return super().handle_no_permission(request, view_func)
        login = redirect_to_login(
            _page_to_return_to(request),
            resolve_url(self.get_login_url(view_func)),
            self.get_redirect_field_name(view_func),
        )
        return HttpResponseClientRedirect(login["Location"])


def _page_to_return_to(request: HttpRequest) -> str:
    """The page the person was on (not the fragment's URL), if it is this site's."""
    page = request.headers.get("HX-Current-URL", "")
    if not url_has_allowed_host_and_scheme(
        page, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return "/"
    parts = urlsplit(page)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class AccountLanguageMiddleware(MiddlewareMixin):
    """A signed-in person's pages are in the language they chose, kept on their account, on
    every device; until they choose, LocaleMiddleware's (Accept-Language, or the cookie).

    A MiddlewareMixin, as LocaleMiddleware is: it serves async views without wrapping them in
    async_to_sync (a reply task they start must not inherit a request thread's executor)."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        # After DatabaseUnavailableMiddleware has loaded the user (or answered 503 without the
        # database): the lookup is not made twice, and never where its failure has no answer.
        try:
            language = getattr(request.user, "language", "")
        except DatabaseError:
            return
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
