from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import path

from accounts import views
from accounts.entra_views import EntraCallbackView, EntraSignInView

urlpatterns = [
    path(
        "sign-in/",
        login_not_required(views.SignInView.as_view()),
        name="login",
    ),
    path("sign-in/microsoft/", EntraSignInView.as_view(), name="entra_sign_in"),
    path("sign-in/microsoft/callback/", EntraCallbackView.as_view(), name="entra_callback"),
    path("sign-out/", views.sign_out, name="logout"),
    path("signed-out/", views.signed_out, name="signed_out"),
    path("language/", views.language_choose, name="language_choose"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="account/password_changed.html"),
        name="password_change_done",
    ),
]
