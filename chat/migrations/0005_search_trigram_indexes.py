"""Trigram indexes for the conversation search, on PostgreSQL only.

Django's ``icontains`` on PostgreSQL is ``UPPER(column::text) LIKE UPPER('%term%')``, so the
indexes are on UPPER(...) with pg_trgm's gin_trgm_ops; a plain index on the column would never
be used. SQLite has neither GIN nor pg_trgm: there this migration does nothing. The indexes stay
out of the models' state (Meta.indexes) for the same reason.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "chat_message_text_trgm": ("chat_message", "text"),
    "chat_conversation_title_trgm": ("chat_conversation", "title"),
}


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} "
            f"USING gin (UPPER({quote(column)}) gin_trgm_ops)"
        )


def remove_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_deployment_name_room_for_simulator_options"),
    ]

    operations = [
        # CreateExtension itself does nothing on other databases.
        TrigramExtension(),
        migrations.RunPython(add_indexes, remove_indexes),
    ]
