"""Apply each deployment's remote retention to the copies Azure keeps. Safe to run from cron.

python manage.py retention_sweep            # every few minutes, e.g. */10 * * * *
python manage.py retention_sweep --enqueue  # let a task worker do it instead
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chat.ledger import ledger_retention_sweep
from chat.tasks import retention_sweep


class Command(BaseCommand):
    help = (
        "Queue the deletion of stored responses older than their deployment's remote retention, "
        "mark those past Azure's 30 days expired, and queue again deletions whose worker stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Enqueue the sweep as a task for `manage.py db_worker` instead of running it.",
        )

    def handle(self, *args: Any, enqueue: bool, **options: Any) -> None:
        if enqueue:
            result = retention_sweep.enqueue()
            self.stdout.write(f"Sweep enqueued as task {result.id}.")
            return
        sweep = ledger_retention_sweep()
        self.stdout.write(
            f"{sweep.queued} deletion(s) queued, {sweep.expired} copy(ies) marked expired, "
            f"{sweep.requeued} stopped deletion(s) queued again."
        )
