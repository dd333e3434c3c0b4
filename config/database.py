"""The check the PostgreSQL connection pool makes before it lends a connection.

A connection that looks alive is lent without a round trip: it is open and its server
has sent nothing unasked. A server that shuts down or restarts tells each client so before it
closes, and a server that dies leaves a socket that reads as closed; either makes the socket
readable. Only then is the connection tried with a query (psycopg_pool's own check).

psycopg_pool's own check finds a dead connection, then waits (1 s, 2 s, 4 s...) before trying
the next idle one. After PostgreSQL restarts every idle connection is dead, so a request would
wait through them all and time out. Here the first dead one has the pool check all of its idle
connections at once: the pool replaces them, and the request gets a fresh one after one pause.
"""

import select
from typing import Any

from django.conf import settings
from psycopg import Connection
from psycopg.pq import ConnStatus
from psycopg_pool import ConnectionPool


def check_connection(conn: Connection[Any]) -> None:
    if looks_alive(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        _check_idle_connections()
        raise


def looks_alive(conn: Connection[Any]) -> bool:
    """Whether ``conn`` is open with nothing unread from its server, asked without a round
    trip (a poll of its socket)."""
    if conn.closed or conn.broken:
        return False
    if conn.info.status != ConnStatus.OK:
        return False
    poll = select.poll()  # not select(): a busy process's descriptors pass 1024
    poll.register(conn.fileno(), select.POLLIN)
    return not poll.poll(0)


def _check_idle_connections() -> None:
    # Imported here: settings.py imports this module, before django.db may be.
    from django.db import connections

    for alias in settings.DATABASES:
        pool: ConnectionPool[Any] | None = getattr(connections[alias], "pool", None)
        if pool is not None and not pool.closed:
            pool.check()
