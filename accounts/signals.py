"""A deactivated user's open sessions end at once, not when they next expire."""

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import user_end_sessions


@receiver(pre_save, sender=User)
def remember_previous_active_state(sender: type[User], instance: User, **kwargs: Any) -> None:
    if instance.pk is None:
        instance._was_active = instance.is_active  # type: ignore[attr-defined]
        return
    previous = User.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    instance._was_active = previous  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def end_sessions_of_deactivated_user(
    sender: type[User], instance: User, created: bool, **kwargs: Any
) -> None:
    if not created and getattr(instance, "_was_active", False) and not instance.is_active:
        user_end_sessions(user=instance)
