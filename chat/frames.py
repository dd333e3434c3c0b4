"""The websocket's incoming frames: htmx's ws-send JSON, read into the QueryDict a form takes.

Whatever arrives gets an answer the person can act on: a frame that is too big, malformed,
or nested thousands of levels deep is refused with a message, never by dropping the socket.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.http import QueryDict
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

MAX_FRAME_BYTES = 256 * 1024
UNREADABLE = gettext_lazy("The page sent something the server could not read. Reload it.")


class FrameRefused(Exception):
    """A frame the consumer will not act on; ``message`` tells the person why."""

    def __init__(self, message: str | Promise) -> None:
        super().__init__(message)
        self.message = message


def parse_frame(text_data: str | None) -> QueryDict:
    if not text_data:
        raise FrameRefused(UNREADABLE)
    if len(text_data) > MAX_FRAME_BYTES:
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        raise FrameRefused(
            gettext(
                "That message is too long: at most %(limit)s characters. "
                "Shorten it or split it into parts."
            )
            % {"limit": number_format(limit, force_grouping=True)}
        )
    try:
        raw = json.loads(text_data)
    except (ValueError, RecursionError) as error:
        # RecursionError: a frame nested thousands of levels deep.
        raise FrameRefused(UNREADABLE) from error
    if not isinstance(raw, dict):
        raise FrameRefused(UNREADABLE)
    data = QueryDict(mutable=True)
    for key, value in raw.items():
        if key == "HEADERS":
            continue
        if isinstance(value, list):
            data.setlist(key, [str(v) for v in value])
        elif isinstance(value, str | int | float):
            data[key] = str(value)
        else:
            raise FrameRefused(UNREADABLE)
    return data


def frame_message_id(payload: QueryDict) -> int | None:
    """The message a frame acts on (edit, regenerate, retry), if it names one."""
    value = payload.get("message_id", "")
    return int(value) if value.isdigit() else None


def frame_after(scope: dict[str, Any]) -> int | None:
    """The last message a reconnecting page shows (``?after=`` on the socket's URL)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get("after", [])
    return int(values[0]) if values and values[0].isdigit() else None
