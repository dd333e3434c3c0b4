"""Which language a person's pages and fragments are in, where no request passes through
LocaleMiddleware (the conversation socket, the reply task)."""

from collections.abc import Iterable

from django.conf import settings
from django.utils.translation import get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header


def language_of(user: object, headers: Iterable[tuple[bytes, bytes]] = ()) -> str:
    """The language the person chose on their account; else the first of their browser's
    ``Accept-Language`` (a socket's handshake headers) that the app speaks; else the default."""
    chosen = getattr(user, "language", "")
    if chosen:
        return str(chosen)
    for name, value in headers:
        if name.lower() == b"accept-language":
            for code, _ in parse_accept_lang_header(value.decode("latin-1")):
                if code == "*":
                    break
                try:
                    return get_supported_language_variant(code)
                except LookupError:
                    continue
    return str(settings.LANGUAGE_CODE)
