from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The project's user, ours from the first migration so it can grow (Entra ID, roles)."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
