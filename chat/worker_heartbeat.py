"""Whether a task worker is running: each worker records that it is alive; the admin reads it.

Remote deletions run only on a worker, so an admin who queues them must be told plainly when
none is running, and how to start one.
"""

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy

from chat.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

# A worker that missed this many beats counts as gone.
MISSED_BEATS = 3
# Rows of workers gone this long are removed by the next beat of any worker.
FORGET_AFTER = timedelta(days=7)
START_HINT = gettext_lazy(
    "Start one with `python manage.py db_worker` (`make run` starts one beside the server; "
    "with docker compose it is the worker service)."
)


def heartbeat_record(*, worker_id: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"seen_at": now},
        create_defaults={
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "seen_at": now,
        },
    )
    WorkerHeartbeat.objects.filter(seen_at__lt=now - FORGET_AFTER).delete()


def heartbeat_start(*, worker_id: str) -> threading.Event:
    """Record one beat now, then one every TASK_WORKER_HEARTBEAT_SECONDS until the event is set.

    A thread of its own, so a long task does not make its worker look dead.
    """
    heartbeat_record(worker_id=worker_id)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.TASK_WORKER_HEARTBEAT_SECONDS):
            try:
                heartbeat_record(worker_id=worker_id)
            except DatabaseError:
                logger.warning("task worker heartbeat: database unreachable", exc_info=True)
            finally:
                connection.close()

    threading.Thread(target=beat, name="worker-heartbeat", daemon=True).start()
    return stop


def worker_last_seen() -> datetime | None:
    latest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True)
    return latest.first()


def worker_notice() -> str:
    """What to tell admins about the task worker: empty while one is running."""
    last_seen = worker_last_seen()
    if last_seen is None:
        return (
            gettext("No task worker has run yet, so deletions from Azure wait in the queue.")
            + " "
            + str(START_HINT)
        )
    silence = timedelta(seconds=settings.TASK_WORKER_HEARTBEAT_SECONDS * MISSED_BEATS)
    if timezone.now() - last_seen <= silence:
        return ""
    when = date_format(timezone.localtime(last_seen), "DATETIME_FORMAT")
    return (
        gettext("No task worker has run since %(when)s, so deletions from Azure wait in the queue.")
        % {"when": when}
        + " "
        + str(START_HINT)
    )
