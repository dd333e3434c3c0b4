"""The pool's check before it lends a connection (config/database.py): no round trip for a
connection that looks alive, a real check for one whose server has hung up."""

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from config.database import check_connection, looks_alive

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool and its check are PostgreSQL's"
)


def _conninfo() -> str:
    params = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname=params["NAME"],
    )


def _connect() -> psycopg.Connection[Any]:
    return psycopg.connect(_conninfo(), autocommit=True)


@pytest.fixture
def lent() -> Iterator[psycopg.Connection[Any]]:
    with _connect() as conn:
        yield conn


@pytest.fixture
def observer() -> Iterator[psycopg.Connection[Any]]:
    with _connect() as conn:
        yield conn


def _last_query(observer: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> str:
    row = observer.execute(
        "SELECT query FROM pg_stat_activity WHERE pid = %s", [conn.info.backend_pid]
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_connection_that_looks_alive_is_lent_without_a_query(
    lent: psycopg.Connection[Any], observer: psycopg.Connection[Any]
) -> None:
    lent.execute("SELECT 'the last thing asked'")

    check_connection(lent)

    assert looks_alive(lent)
    assert _last_query(observer, lent) == "SELECT 'the last thing asked'"


def test_a_connection_whose_server_hung_up_is_not_lent(observer: psycopg.Connection[Any]) -> None:
    with ConnectionPool(_conninfo(), min_size=1, max_size=1, check=check_connection) as pool:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        observer.execute("SELECT pg_terminate_backend(%s)", [first])
        deadline = time.monotonic() + 10
        while looks_alive(conn):  # the server's goodbye is on its way
            assert time.monotonic() < deadline, "the socket never showed the server's goodbye"
            time.sleep(0.01)

        with pool.connection() as conn:
            assert conn.info.backend_pid != first
            assert conn.execute("SELECT 1").fetchone() == (1,)
