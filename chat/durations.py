"""Spans of time in words, singular or plural as the number asks ("1 hour", "2 hours")."""

from django.utils.translation import ngettext


def seconds_text(count: int) -> str:
    return ngettext("%(count)d second", "%(count)d seconds", count) % {"count": count}


def minutes_text(count: int) -> str:
    return ngettext("%(count)d minute", "%(count)d minutes", count) % {"count": count}


def hours_text(count: int) -> str:
    return ngettext("%(count)d hour", "%(count)d hours", count) % {"count": count}


def days_text(count: int) -> str:
    return ngettext("%(count)d day", "%(count)d days", count) % {"count": count}


def hours_or_days_text(hours: int) -> str:
    """Whole days as days ("30 days"), anything else as hours ("36 hours")."""
    return days_text(hours // 24) if hours % 24 == 0 else hours_text(hours)
