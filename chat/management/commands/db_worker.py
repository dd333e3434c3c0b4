"""``manage.py db_worker``: django-tasks-db's worker, recording a heartbeat while it runs.

The heartbeat lets the ledger's admin page say plainly when no worker is running
(``chat.worker_heartbeat``). Everything else is django-tasks-db's own command.
"""

import os
from typing import Any

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from chat.worker_heartbeat import heartbeat_start


class Command(db_worker.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        # With --reload the parent only watches files and restarts the worker process: the
        # worker's own process beats.
        if not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            stop = heartbeat_start(worker_id=options["worker_id"])
        else:
            stop = None
        try:
            super().handle(*args, **options)
        finally:
            if stop is not None:
                stop.set()
