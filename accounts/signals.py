"""A deactivated user's open sessions end at once, not when they next expire."""

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import user_end_sessions

WAS_ACTIVE = "_was_active_before_save"


@receiver(pre_save, sender=User)
def remember_previous_active_state(sender: type[User], instance: User, **kwargs: Any) -> None:
    if instance.pk is None:
        was_active: bool | None = instance.is_active
    else:
        was_active = User.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    setattr(instance, WAS_ACTIVE, was_active)


@receiver(post_save, sender=User)
def end_sessions_of_deactivated_user(
    sender: type[User], instance: User, created: bool, **kwargs: Any
) -> None:
    if not created and getattr(instance, WAS_ACTIVE, False) and not instance.is_active:
        user_end_sessions(user=instance)
