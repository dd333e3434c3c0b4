from typing import Any

from django.conf import settings
from django.contrib.auth import logout, views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.entra_views import entra_sign_out_url
from accounts.forms import SignInForm
from accounts.models import User

LOCAL_SIGN_IN_OFF = gettext_lazy(
    "Sign-in with a password is turned off here. Use “Sign in with Microsoft”."
)


@login_not_required
def admin_sign_in(request: HttpRequest) -> HttpResponse:
    """The admin signs in through our own page; a signed-in non-staff user is refused outright
    (sending them to sign in again would loop)."""
    if request.user.is_authenticated:
        raise PermissionDenied("The admin is for staff only.")
    return redirect_to_login(request.GET.get("next", reverse("admin:index")), reverse("login"))


class SignInView(auth_views.LoginView):
    """Our sign-in page, which is the admin's too: the password form unless LOCAL_SIGN_IN is
    off, and "Sign in with Microsoft" when Entra ID is configured."""

    template_name = "account/sign_in.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_SIGN_IN:
            context = self.get_context_data(refusal=LOCAL_SIGN_IN_OFF)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)


@login_not_required
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here (which closes this session's sockets), then, for a Microsoft account with
    ENTRA_SIGN_OUT on, at the tenant too."""
    with_entra = isinstance(request.user, User) and request.user.signs_in_with_entra
    logout(request)
    onward = entra_sign_out_url(request) if with_entra else None
    return HttpResponseRedirect(onward or reverse("signed_out"))


@login_not_required
@require_GET
def signed_out(request: HttpRequest) -> HttpResponse:
    return render(request, "account/signed_out.html")


def _local_password_only(request: HttpRequest) -> None:
    """A Microsoft account has no password here, and with LOCAL_SIGN_IN off nobody does."""
    user = request.user
    if not settings.LOCAL_SIGN_IN or (isinstance(user, User) and user.signs_in_with_entra):
        raise Http404("Passwords are managed by your organisation's sign-in.")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "account/password_change.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        _local_password_only(request)
        return super().dispatch(request, *args, **kwargs)


@login_not_required
@require_POST
def language_choose(request: HttpRequest) -> HttpResponse:
    """The language the person picked: kept on their account (every device follows it) and in
    the language cookie (the sign-in page too), then back to the page they were on."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        raise Http404("No such language.")
    onward = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        onward, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        onward = "/"
    if isinstance(request.user, User):
        request.user.language = language
        request.user.save(update_fields=["language"])
    response = HttpResponseRedirect(onward)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
    )
    return response
