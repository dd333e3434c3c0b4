import logging
import sys

import pytest

from chat.llm import ErrorKind, LLMError, classify_error
from chat.redaction import redact
from config.logging import RedactSecretsFilter

# Shaped like nothing in particular: only knowing the environment's keys finds it.
ODD_KEY = "correct.horse.battery.staple"


@pytest.fixture
def odd_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SWEDEN_API_KEY", ODD_KEY)
    return ODD_KEY


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-abcDEF123_456-xyz.",
        "Incorrect API key provided: 0123456789abcdef0123456789abcdef.",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "headers {'api-key': 'f00dfeedf00dfeedf00dfeedf00dfeed'}",
        "api-key: hunter2hunter2",
        "key 7Vq2b9XkLmN3pR5tW8yZ1aC4eF6hJ0sD2gK5nQ8uV1xB3mP7rT9wY2zA4cE6iL8oU0qS3vX5 refused",
        "postgres://chat:pa55word@db:5432/chat",
    ],
)
def test_anything_shaped_like_a_credential_is_redacted(text: str) -> None:
    cleaned = redact(text)

    assert "[redacted]" in cleaned
    for secret in (
        "sk-proj-abcDEF123_456-xyz",
        "0123456789abcdef0123456789abcdef",
        "eyJhbGciOiJSUzI1NiJ9",
        "f00dfeed",
        "hunter2hunter2",
        "7Vq2b9XkLmN3",
        "pa55word",
    ):
        assert secret not in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Response with id 'resp_68af0c3a1e2c8190a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5' not found.",
        "request 0f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f8 failed",
        "429 rate_limit_exceeded Try again in 3 seconds.",
        "deployment gpt-4.1-mini-2025-04-14-global-standard is busy",
    ],
)
def test_ids_and_ordinary_words_are_kept(text: str) -> None:
    assert redact(text) == text


def test_the_environments_key_values_are_redacted_whatever_their_shape(odd_key: str) -> None:
    assert redact(f"Incorrect key {odd_key} for this resource") == (
        "Incorrect key [redacted] for this resource"
    )


def test_an_error_the_gateway_builds_never_carries_a_key(odd_key: str) -> None:
    classified = classify_error(
        {"code": "invalid_api_key", "message": f"Incorrect API key provided: {odd_key}."},
        status=401,
    )
    built = LLMError(ErrorKind.AUTH_FAILED, f"bad {odd_key}", detail=f"echo {odd_key}")

    for error in (classified, built):
        assert odd_key not in repr(error)
    assert classified.detail == "401 invalid_api_key Incorrect API key provided: [redacted]."


def test_log_lines_and_their_tracebacks_are_redacted(odd_key: str) -> None:
    try:
        raise RuntimeError(f"upstream said: Incorrect API key provided: {odd_key}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "chat.llm", logging.WARNING, __file__, 1, "test failed: %s", (odd_key,), exc_info
    )

    assert RedactSecretsFilter().filter(record)
    line = logging.Formatter().format(record)

    assert odd_key not in line
    assert "test failed: [redacted]" in line
    assert "Incorrect API key provided: [redacted]" in line
