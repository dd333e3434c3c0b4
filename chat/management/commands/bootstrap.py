"""``manage.py bootstrap``: first-run setup that is safe to repeat (``make run`` calls it)."""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the first administrator (once) and print its password that one time."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator exists already; nothing to do.")
            return
        if user_model.objects.filter(username=ADMIN_USERNAME).exists():
            raise CommandError(
                f'A user named "{ADMIN_USERNAME}" exists but is not an administrator; create one '
                "with: manage.py createsuperuser"
            )
        # The password is shown here only; it is stored hashed and cannot be printed again.
        password = secrets.token_urlsafe(18)
        user_model.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
        line = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"{line}\n"
                f"Created the administrator account.\n"
                f"  username: {ADMIN_USERNAME}\n"
                f"  password: {password}\n"
                f"Write the password down now: it will not be shown again.\n"
                f"(Forgot it? Run: manage.py changepassword {ADMIN_USERNAME})\n"
                f"{line}"
            )
        )
