from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """The project's user. A Microsoft Entra ID account is known by its tenant and object id
    (``tid`` + ``oid``), never by its email or user name, which can change and, across
    tenants, be claimed by someone else; it has no usable local password."""

    entra_tenant_id = models.CharField(_("Entra tenant id"), max_length=64, blank=True, default="")
    entra_object_id = models.CharField(_("Entra object id"), max_length=64, blank=True, default="")
    entra_roles = models.JSONField(
        _("Entra app roles"),
        default=list,
        blank=True,
        help_text=_("The app roles of the last sign-in, mirrored into groups of the same names."),
    )
    last_entra_sign_in = models.DateTimeField(_("last Entra ID sign-in"), null=True, blank=True)
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        default="",
        choices=settings.LANGUAGES,
        help_text=_("The language the person chose; empty: their browser's."),
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["entra_tenant_id", "entra_object_id"],
                condition=~Q(entra_object_id=""),
                name="unique_entra_identity",
            )
        ]

    @property
    def signs_in_with_entra(self) -> bool:
        return bool(self.entra_object_id)
