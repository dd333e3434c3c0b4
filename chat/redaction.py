"""Redaction: no credential leaves the app in an error, a page, a cookie or a log line.

Upstream services repeat what they were sent ("Incorrect API key provided: ..."), so every
error the gateway builds, and every log line, goes through ``redact``. It replaces by
``[redacted]`` the values of the key variables set in the environment, whatever they look
like, and anything shaped like a credential: ``sk-...`` keys, ``Bearer`` and ``api-key``
values, ``password=...`` pairs, and long random-looking tokens (32 or more letters and digits,
as Azure's keys are).
"""

import os
import re

from django.conf import settings

from chat.validators import key_variable_problem

REDACTED = "[redacted]"
# A value shorter than this is not searched for literally: it would blank out ordinary words.
_MIN_SECRET_LENGTH = 8
# Variables named like this hold secrets even when no deployment names them.
_SECRET_NAME = re.compile(r"(?:^|_)(?:SECRET|PASSWORD|PASSWD|TOKEN|KEY)$")
# A value up to its end, a closing full stop or comma not included.
_VALUE = r"(?!\[redacted\])[^\s\"',}]*[^\s\"',}.]"
_SHAPES = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(rf"(?i)((?:api[-_]?key|password|secret|token)[\"']?\s*[:=]\s*[\"']?){_VALUE}"),
    re.compile(rf"(?i)(\bkey provided:\s*){_VALUE}"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(?=@)"),
]
# A run of letters and digits standing alone (not part of an id such as ``resp_...``).
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_.-])[A-Za-z0-9+]{32,}={0,2}(?![A-Za-z0-9+/=_-])")


def _is_token(word: str) -> bool:
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def _secret_values() -> list[str]:
    if not settings.configured:  # a log line from before Django's set-up
        return []
    values = {
        value
        for name, value in os.environ.items()
        if len(value) >= _MIN_SECRET_LENGTH
        and (_SECRET_NAME.search(name) or key_variable_problem(name) is None)
    }
    # Longest first, so that a key containing another one is removed whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` without credentials: the environment's keys, and anything shaped like a key."""
    for secret in _secret_values():
        text = text.replace(secret, REDACTED)
    for pattern in _SHAPES:
        text = pattern.sub(rf"\1{REDACTED}", text)
    return _TOKEN.sub(lambda m: REDACTED if _is_token(m.group()) else m.group(), text)
