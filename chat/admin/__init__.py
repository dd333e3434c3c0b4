"""The chat admin: one module per kind of record."""

from chat.admin import (
    assistants,
    conversations,
    deployments,
    ratings,
    stored_copies,
    token_usage,
)

__all__ = ["assistants", "conversations", "deployments", "ratings", "stored_copies", "token_usage"]
