"""Background work on django.tasks (django-tasks-db backend; run with ``manage.py db_worker``).

The tasks are thin: their rules live in ``chat.ledger``, where the admin and commands reach them.
"""

from __future__ import annotations

from dataclasses import asdict

from django.tasks import task

from chat.ledger import ledger_delete_remote, ledger_retention_sweep


@task()
def delete_stored_response(row_id: int) -> str:
    """Delete one ledger row's copy on Azure (retries are enqueued again by the ledger)."""
    return ledger_delete_remote(row_id=row_id)


@task()
def retention_sweep() -> dict[str, int]:
    """Apply every deployment's remote retention; see ``manage.py retention_sweep``."""
    return asdict(ledger_retention_sweep())
