"""Background work on django.tasks (django-tasks-db backend; run with ``manage.py db_worker``)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.tasks import task
from django.utils import timezone

from chat import llm
from chat.models import StoredResponse


@task()
def delete_stored_response(row_id: int) -> str:
    row = StoredResponse.objects.select_related("deployment").filter(pk=row_id).first()
    if row is None or row.state != StoredResponse.State.DELETING:
        return "skipped"
    async_to_sync(llm.delete_response)(row.deployment, row.response_id)
    row.state = StoredResponse.State.DELETED
    row.deleted_at = timezone.now()
    row.save(update_fields=["state", "deleted_at"])
    return "deleted"
