from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_sign_in
from config import health

handler400 = "config.errors.bad_request"
handler403 = "config.errors.forbidden"
handler500 = "config.unavailable.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/login/", admin_sign_in, name="admin_sign_in"),
    path("admin/", admin.site.urls),
    path("account/", include("accounts.urls")),
    path("", include("chat.urls")),
]
