"""What a turn reads before it writes, in one statement: the conversation, locked.

A turn locks its conversation (concurrent sends queue behind each other) and needs, with it:
the conversation's deployment; whether the user may still use that deployment; whether the
session that asks is still current; whether a reply is in flight, or this send was made before
(a double click, a replay after reconnecting). Through the ORM that was four queries, and
compiling them cost more than running them: ≈ 9 ms of the turn's ≈ 20 on the first token's
path (``bench/RESULTS.md`` §10). Here the statement is written once per process from the
models' own metadata, so a new column needs no edit, and each turn only runs it.

The statement is scoped to its owner as ``Conversation.objects.for_user`` is: another person's
conversation, or one that is gone, is no row.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Model

from accounts.models import User
from accounts.sockets import session_signed_by
from chat.models import Conversation, Deployment, Message

Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True, slots=True)
class LockedConversation:
    conversation: Conversation
    session_current: bool
    # Whether a reply is in flight, and the message this send made before (its client id).
    in_flight: bool
    repeated_id: int | None


@dataclass(frozen=True, slots=True)
class _Columns:
    """One model's columns in the statement: where they are in the row, and how to read them."""

    model: type[Model]
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Converter, ...]], ...]

    def build(self, values: Iterator[Any]) -> Model | None:
        """The model of the next columns of ``values`` (None for a row a LEFT JOIN left empty)."""
        row = [next(values) for _ in self.names]
        if row[self.names.index(self.model._meta.pk.attname)] is None:
            return None
        for position, converters in self.converters:
            for convert in converters:
                row[position] = convert(row[position], None, connection)
        return self.model.from_db(connection.alias, self.names, row)


def _columns(model: type[Model], table: str) -> tuple[str, _Columns]:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    converters = []
    for position, field in enumerate(fields):
        found = connection.ops.get_db_converters(field.get_col(table)) + field.get_db_converters(
            connection
        )
        if found:
            converters.append((position, tuple(found)))
    sql = ", ".join(f"{table}.{quote(str(field.column))}" for field in fields)
    return sql, _Columns(model, tuple(field.attname for field in fields), tuple(converters))


@functools.cache
def _statement(vendor: str) -> tuple[str, _Columns, _Columns, _Columns]:
    quote = connection.ops.quote_name
    conversation_sql, conversation = _columns(Conversation, "c")
    deployment_sql, deployment = _columns(Deployment, "d")
    head_sql, head = _columns(Deployment, "h")
    limits = Deployment.allowed_groups.through._meta.db_table
    memberships = User.groups.through._meta.db_table
    in_flight = ", ".join(f"%(status{index})s" for index in range(len(Message.IN_FLIGHT)))
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    # Identifiers from the models, quoted; every value is a parameter.
    sql = f"""
        SELECT {conversation_sql}, {deployment_sql}, {head_sql},
            (NOT EXISTS (SELECT 1 FROM {quote(limits)} g WHERE g.deployment_id = c.deployment_id)
             OR EXISTS (
                SELECT 1 FROM {quote(limits)} g
                JOIN {quote(memberships)} m ON m.group_id = g.group_id
                WHERE g.deployment_id = c.deployment_id AND m.user_id = %(user)s
             )) AS open,
            (SELECT u.password FROM {quote(User._meta.db_table)} u
             WHERE u.id = %(user)s AND u.is_active) AS password,
            (SELECT s.session_data FROM {quote(Session._meta.db_table)} s
             WHERE s.session_key = %(session)s AND s.expire_date > %(now)s) AS session_data,
            EXISTS (
                SELECT 1 FROM {quote(Message._meta.db_table)} r
                WHERE r.conversation_id = c.id AND r.role = %(assistant)s
                AND r.status IN ({in_flight})
            ) AS in_flight,
            (SELECT r.id FROM {quote(Message._meta.db_table)} r
             WHERE r.conversation_id = c.id AND r.client_id = %(client)s
             ORDER BY r.id LIMIT 1) AS repeated_id
        FROM {quote(Conversation._meta.db_table)} c
        LEFT JOIN {quote(Deployment._meta.db_table)} d ON d.id = c.deployment_id
        LEFT JOIN {quote(Deployment._meta.db_table)} h ON h.id = c.head_deployment_id
        WHERE c.id = %(conversation)s AND c.owner_id = %(user)s{lock}
    """  # noqa: S608
    return sql, conversation, deployment, head


def conversation_lock(
    *,
    user: User,
    conversation_id: int,
    session_key: str | None,
    client_id: uuid.UUID | None,
    now: datetime,
) -> LockedConversation | None:
    """The user's conversation, locked until the transaction ends; None when it is not theirs
    (or is gone). Its ``open_deployment_id`` is its deployment's id when the user may still use
    that deployment."""
    sql, conversation_columns, deployment_columns, head_columns = _statement(connection.vendor)
    parameters = {
        "user": user.pk,
        "conversation": conversation_id,
        "session": session_key or "",
        "now": Session._meta.get_field("expire_date").get_db_prep_value(now, connection),
        "assistant": Message.Role.ASSISTANT.value,
        **{f"status{index}": str(status) for index, status in enumerate(Message.IN_FLIGHT)},
        "client": Message._meta.get_field("client_id").get_db_prep_value(client_id, connection),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    if row is None:
        return None
    values = iter(row)
    conversation = conversation_columns.build(values)
    assert isinstance(conversation, Conversation)
    deployment = deployment_columns.build(values)
    # Both loaded, as select_related would: a head on the same resource is compared with no query.
    conversation.deployment = deployment  # type: ignore[assignment]
    conversation.head_deployment = head_columns.build(values)  # type: ignore[assignment]
    is_open, password, session_data, in_flight, repeated_id = values
    conversation.open_deployment_id = (  # type: ignore[attr-defined]
        conversation.deployment_id if deployment is not None and is_open else None
    )
    current = bool(session_key) and session_signed_by(
        user_id=user.pk, password=password, session_data=session_data
    )
    return LockedConversation(conversation, current, bool(in_flight), repeated_id)
