"""The suite runs on two pytest-xdist workers (``-n 2``); each needs its own Redis database.

Every test starts with ``cache.clear()``, which empties the cache's whole Redis database, and
the channel layer keeps its groups in Redis too: two workers sharing one would clear each
other's state mid-test. Loaded with ``-p tests.workers`` (pytest's ``addopts``), so this runs
before pytest-django reads the settings, in each worker, whose name (``gw0``, ``gw1``...)
xdist puts in the environment: worker N uses the database after REDIS_URL's by N + 1.
PostgreSQL needs nothing here: pytest-django gives each worker its own test database.
"""

import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_redis_url = os.environ.get("REDIS_URL", "")
if _worker.startswith("gw") and _redis_url:
    index = int(_worker[2:])
    found = re.fullmatch(r"(redis://[^/]+)(?:/(\d+))?", _redis_url)
    if found is None:
        raise RuntimeError(f"REDIS_URL is not redis://host:port/db: {_redis_url!r}")
    base = int(found.group(2) or 0)
    os.environ["REDIS_URL"] = f"{found.group(1)}/{base + index + 1}"
