"""The check the PostgreSQL connection pool makes before it lends a connection.

psycopg_pool's own check finds a dead connection, then waits (1 s, 2 s, 4 s...) before trying
the next idle one. After PostgreSQL restarts every idle connection is dead, so a request would
wait through them all and time out. Here the first dead one has the pool check all of its idle
connections at once: the pool replaces them, and the request gets a fresh one after one pause.
"""

from typing import Any

from django.conf import settings
from psycopg import Connection
from psycopg_pool import ConnectionPool


def check_connection(conn: Connection[Any]) -> None:
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        _check_idle_connections()
        raise


def _check_idle_connections() -> None:
    # Imported here: settings.py imports this module, before django.db may be.
    from django.db import connections

    for alias in settings.DATABASES:
        pool: ConnectionPool[Any] | None = getattr(connections[alias], "pool", None)
        if pool is not None:
            pool.check()
