"""The database thread's work per turn, function by function, in-process (issue 16).

What every turn runs on the one thread ``database_sync_to_async`` calls share, each call
between ``close_old_connections()`` as that wrapper does (the connection taken from the pool
and given back): saving the turn (``services.turn_start``), the ledger row of its reply's copy
(``ledger.ledger_record``) and saving the finished reply (``saving.reply_finish``, a 300-word
reply rendered before, as the loop does). Conversations of 4 turns, as in
``bench.short_replies``. No model is asked, no socket opened: the figures are this thread's
CPU time (``time.thread_time``) and wall time per call, medians and p95 over ``--turns`` turns
after a warm-up, so that a change to these functions can be measured on a machine whose
end-to-end figures wander by more than it saves (for a before, run the per-function part from
a worktree of an older commit: the side-by-side part needs ``chat.row_insert``). The rows of
a turn and of its ledger are also written both ways, interleaved in one process (the ORM's
``create``/``bulk_create`` against ``chat.row_insert``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.harness import common_arguments, running_stack, stack_from, summary, write_results

if TYPE_CHECKING:
    from chat.models import Deployment

WARMUP_TURNS = 40
TURNS_PER_CONVERSATION = 4
REPLY_WORDS = 300


def _timed(
    took: dict[str, dict[str, list[float]]], call: Callable[..., Any], **arguments: Any
) -> Any:
    from django.db import close_old_connections

    close_old_connections()
    cpu, wall = time.thread_time(), time.perf_counter()
    result = call(**arguments)
    close_old_connections()
    took[call.__name__]["cpu"].append(time.thread_time() - cpu)
    took[call.__name__]["wall"].append(time.perf_counter() - wall)
    return result


def measure(deployment: Deployment, turns: int) -> dict[str, Any]:
    from django.test import Client

    from bench import data
    from chat import services
    from chat.ledger import ledger_record
    from chat.saving import ReplyOutcome, reply_finish, reply_text

    (user,) = data.create_users(1, prefix="saver")
    client = Client()
    client.force_login(user)  # a real session: the turn checks it is still current
    session_key = client.session.session_key
    words = " ".join(f"word{index % 50}" for index in range(REPLY_WORDS))
    took: dict[str, dict[str, list[float]]] = {
        name: {"cpu": [], "wall": []} for name in ("turn_start", "ledger_record", "reply_finish")
    }
    conversation = None
    for index in range(WARMUP_TURNS + turns):
        if index % TURNS_PER_CONVERSATION == 0:
            conversation = services.conversation_create(owner=user, deployment=deployment)
        assert conversation is not None
        if index == WARMUP_TURNS:
            for figures in took.values():
                figures["cpu"].clear()
                figures["wall"].clear()
        turn = _timed(
            took,
            services.turn_start,
            user=user,
            conversation_id=conversation.pk,
            text=f"Question {index}: what is in the report?",
            client_id=uuid.uuid4(),
            session_key=session_key,
        )
        response_id = f"resp_{uuid.uuid4().hex}"
        _timed(
            took,
            ledger_record,
            deployment=deployment,
            response_id=response_id,
            endpoint=deployment.endpoint,
            request_id="req",
            region="swedencentral",
            user_id=user.pk,
            conversation_id=turn.conversation.pk,
        )
        outcome = ReplyOutcome(
            text=words,
            status="completed",
            deployment=deployment,
            response_id=response_id,
            endpoint=deployment.endpoint,
            stored_remotely=True,
            becomes_head=True,
        )
        rendered = reply_text(outcome)
        _timed(
            took,
            reply_finish,
            message=turn.assistant_message,
            conversation=turn.conversation,
            outcome=outcome,
            rendered=rendered,
        )
    return {
        name: {"cpu_ms": summary(figures["cpu"]), "wall_ms": summary(figures["wall"])}
        for name, figures in took.items()
    }


def inserts_side_by_side(deployment: Deployment, rounds: int) -> dict[str, Any]:
    """The same rows written through the ORM and through ``chat.row_insert``, interleaved in
    this process (so the machine's drift touches both alike): CPU per row, in a transaction
    rolled back (no commit, so nothing but the statement is timed)."""
    from django.db import transaction
    from django.utils import timezone

    from bench import data
    from chat.models import Conversation, Message, StoredResponse
    from chat.row_insert import Upsert, row_insert

    (owner,) = data.create_users(1, prefix="writer")
    conversation = Conversation.objects.create(owner=owner, deployment=deployment)
    keep = Upsert(unique=("deployment", "response_id"))

    def message() -> dict[str, Any]:
        return {
            "conversation": conversation,
            "role": Message.Role.USER,
            "text": "What is in the report?",
            "client_id": uuid.uuid4(),
            "created_at": timezone.now(),
        }

    def copy() -> StoredResponse:
        now = timezone.now()
        return StoredResponse(
            response_id=f"resp_{uuid.uuid4().hex}",
            deployment=deployment,
            endpoint=deployment.endpoint,
            user_id=owner.pk,
            conversation_id=conversation.pk,
            created_at=now,
            remote_expires_at=now + deployment.remote_retention,
        )

    writes: dict[str, Callable[[], object]] = {
        "message, Message.objects.create": lambda: Message.objects.create(**message()),
        "message, row_insert": lambda: row_insert(Message(**message())),
        "ledger row, bulk_create(ignore_conflicts)": lambda: StoredResponse.objects.bulk_create(
            [copy()], ignore_conflicts=True
        ),
        "ledger row, row_insert(upsert)": lambda: row_insert(copy(), upsert=keep),
    }
    took: dict[str, list[float]] = {name: [] for name in writes}
    for round_number in range(WARMUP_TURNS + rounds):
        with transaction.atomic():
            for name, write in writes.items():
                cpu = time.thread_time()
                write()
                if round_number >= WARMUP_TURNS:
                    took[name].append(time.thread_time() - cpu)
            transaction.set_rollback(True)
    return {name: summary(values, digits=3) for name, values in took.items()}


def main() -> None:
    parser = common_arguments(__doc__ or "")
    parser.add_argument("--turns", type=int, default=400, help="turns measured (default 400)")
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("turn_save", args)
    with running_stack(stack):
        from bench import data

        simulator = stack.start_simulator()
        deployment = data.add_deployment(simulator, "Simulator", "ttft_ms=0")
        figures = measure(deployment, args.turns)
        side_by_side = inserts_side_by_side(deployment, args.turns)
        for name, parts in figures.items():
            cpu, wall = parts["cpu_ms"], parts["wall_ms"]
            print(
                f"{name:14} CPU p50 {cpu['p50']:.3f} p95 {cpu['p95']:.3f} ms, "
                f"wall p50 {wall['p50']:.3f} p95 {wall['p95']:.3f} ms"
            )
        for name, cpu in side_by_side.items():
            print(f"{name:42} CPU p50 {cpu['p50']:.3f} p95 {cpu['p95']:.3f} ms")
        write_results(
            stack,
            started,
            {**figures, "inserts_side_by_side_cpu_ms": side_by_side},
            turns=args.turns,
        )


if __name__ == "__main__":
    main()
