from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse


@login_not_required
def admin_sign_in(request: HttpRequest) -> HttpResponse:
    """The admin signs in through our own page; a signed-in non-staff user is refused outright
    (sending them to sign in again would loop)."""
    if request.user.is_authenticated:
        raise PermissionDenied("The admin is for staff only.")
    return redirect_to_login(request.GET.get("next", reverse("admin:index")), reverse("login"))
