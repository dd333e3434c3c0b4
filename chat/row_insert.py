"""One row's INSERT, written once per process from its model's metadata.

``Model.objects.create`` and ``bulk_create`` compile their statement on every call: for a
message about 0.6 ms of Django's own code, and a turn writes two, with the ledger row of its
reply soon after, all on the first token's path and on the database thread every turn shares
(both ways side by side: ``bench/turn_save.py``). Here the statement is built once per model
and conflict rule from the model's concrete fields, so a new column needs no edit; each call
prepares its values as the ORM does (each field's ``pre_save``, then ``get_db_prep_save``)
and reads the new primary key back.

No ``pre_save`` or ``post_save`` signal is sent: only models with no receivers for them are
written here (``row_insert`` refuses others).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field, Model
from django.db.models.constants import OnConflict
from django.db.models.signals import post_save, pre_save


@dataclass(frozen=True, slots=True)
class Upsert:
    """On a row that exists with the same ``unique`` columns: keep it (``update`` empty), or
    give it the new values of ``update``."""

    unique: tuple[str, ...]
    update: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    fields: tuple[Field[object, object], ...]
    returns_pk: bool


@functools.cache
def _statement(model: type[Model], vendor: str, upsert: Upsert | None) -> _Statement:
    meta = model._meta
    ops = connection.ops
    fields = tuple(field for field in meta.concrete_fields if field is not meta.auto_field)
    on_conflict = None
    if upsert is not None:
        on_conflict = OnConflict.UPDATE if upsert.update else OnConflict.IGNORE
    columns = ", ".join(ops.quote_name(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"{ops.insert_statement(on_conflict=on_conflict)} {ops.quote_name(meta.db_table)} "
        f"({columns}) VALUES ({placeholders})"
    )
    if upsert is not None:
        unique = [_column(model, name) for name in upsert.unique]
        update = [_column(model, name) for name in upsert.update]
        sql += " " + (ops.on_conflict_suffix_sql(fields, on_conflict, update, unique) or "")
    # A kept row (the conflict ignored) returns nothing: only a plain insert reads its key.
    returns_pk = meta.auto_field is not None and upsert is None
    if returns_pk:
        sql += f" RETURNING {ops.quote_name(_column(model, meta.pk.name))}"
    return _Statement(sql, fields, returns_pk)


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return str(field.column)


def row_insert(row: Model, *, upsert: Upsert | None = None) -> None:
    """Insert ``row`` as ``row.save()`` would a new one (its key set after), in one statement."""
    model = type(row)
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        raise TypeError(f"{model.__name__} has save signal receivers: save it through the ORM")
    statement = _statement(model, connection.vendor, upsert)
    values = [
        field.get_db_prep_save(field.pre_save(row, True), connection) for field in statement.fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, values)
        if statement.returns_pk:
            (pk,) = cursor.fetchone()
            row.pk = pk
    row._state.adding = False
    row._state.db = connection.alias
