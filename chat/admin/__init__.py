"""The chat admin: one module per kind of record."""

from chat.admin import conversations, deployments, stored_copies, token_usage

__all__ = ["conversations", "deployments", "stored_copies", "token_usage"]
