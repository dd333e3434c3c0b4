"""Logging helpers: a last line of defence that keeps credentials out of every log line."""

import logging

from chat.redaction import redact


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            # A traceback quotes exception messages, which may quote what upstream was sent.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
