from django.conf import settings
from django.http import HttpRequest


def sign_in_methods(request: HttpRequest) -> dict[str, bool]:
    """Which ways in the pages offer: the password form, and "Sign in with Microsoft"."""
    return {"entra_enabled": settings.ENTRA_ENABLED, "local_sign_in": settings.LOCAL_SIGN_IN}
