"""What each turn and each page costs (issue 6, figure 4).

Queries per turn: the real ASGI application runs in this process (Channels' websocket test
communicator, the session cookie of a real sign-in), so every query of a turn can be counted
with ``connection.execute_wrapper`` on the thread that runs the app's database work, from the
composer frame to the final render, at 1, 100 and 1,000 messages of history, for a stateful
deployment (``previous_response_id``) and a stateless one (the whole history every turn).

Server time of pages: the app served by uvicorn as in production, timed from a keep-alive
client on loopback, for a conversation of 1,000 messages and the conversation list of a person
with 10,000 conversations; their queries are counted in this process with Django's test client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx2
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bench.harness import (
    Service,
    common_arguments,
    cookie_header,
    running_stack,
    sign_in,
    stack_from,
    summary,
    table,
    write_results,
)
from bench.lanes import DELTA_FRAME, IN_FLIGHT, RENDER_FRAME, REPLY_STATUS

HISTORIES = (1, 100, 1000)
MEASURED_TURNS = 3
PAGE_MESSAGES = 1000
LIST_CONVERSATIONS = 10_000
PAGE_REQUESTS = 60
PAGE_WARMUP = 5
QUERIES_PER_TURN_GOAL = 8
CONVERSATION_PAGE_GOAL_MS = 100.0
LIST_PAGE_GOAL_MS = 30.0
SIMULATOR_OPTIONS = "ttft_ms=50,tps=200,words=120"
SETTLE_SECONDS = 0.3


class QueryLog:
    """Every query the app's database thread runs, with the moment it started."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._installed = ExitStack()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        with self._lock:
            self.entries.append((time.monotonic(), sql))
        return execute(sql, params, many, context)

    def install(self) -> None:
        """Run on the app's database thread (Channels' ``database_sync_to_async``)."""
        from django.db import connection

        self._installed.enter_context(connection.execute_wrapper(self))

    def uninstall(self) -> None:
        self._installed.close()

    def since(self, moment: float) -> list[tuple[float, str]]:
        with self._lock:
            return [entry for entry in self.entries if entry[0] >= moment]


def statement(sql: str) -> str:
    """The statement's kind and first table, enough to read what a turn did."""
    words = sql.split()
    table_name = next(
        (word.strip('"') for word in words if word.startswith('"chat_') or word.startswith('"')),
        "",
    )
    return f"{words[0]} {table_name}".strip()


async def one_turn(communicator: WebsocketCommunicator, log: QueryLog, text: str) -> dict[str, Any]:
    began = time.monotonic()
    first_delta = last_delta = 0.0
    await communicator.send_to(
        text_data=json.dumps({"text": text, "client_id": str(uuid.uuid4()), "HEADERS": {}})
    )
    reply_id = ""
    while True:
        frame = await communicator.receive_from(timeout=60)
        now = time.monotonic()
        statuses = dict(REPLY_STATUS.findall(frame))
        reply_id = reply_id or next((m for m, s in statuses.items() if s in IN_FLIGHT), "")
        rendered = [match[1] for match in RENDER_FRAME.finditer(frame)]
        appended = [message_id for message_id, _ in DELTA_FRAME.findall(frame)]
        if reply_id and reply_id in rendered + appended:
            first_delta = first_delta or now
            last_delta = now
        status = statuses.get(reply_id, "pending")
        if status not in IN_FLIGHT:
            break
    await asyncio.sleep(SETTLE_SECONDS)
    queries = log.since(began)
    return {
        "status": status,
        "queries": len(queries),
        "before_first_delta": sum(1 for at, _ in queries if at < first_delta),
        "while_streaming": sum(1 for at, _ in queries if first_delta <= at < last_delta),
        "after_last_delta": sum(1 for at, _ in queries if at >= last_delta),
        "statements": [statement(sql) for _, sql in queries],
    }


async def count_turn_queries(
    app_url: str, conversations: dict[str, int], cookies: dict[str, str]
) -> dict[str, Any]:
    from config.asgi import application

    log = QueryLog()
    await database_sync_to_async(log.install)()
    headers = [
        (b"host", urlsplit(app_url).netloc.encode()),  # the Origin must be the socket's own
        (b"origin", app_url.encode()),
        (b"cookie", cookie_header(cookies).encode()),
    ]
    results: dict[str, Any] = {}
    try:
        for label, conversation_id in conversations.items():
            communicator = WebsocketCommunicator(
                application, f"/ws/conversations/{conversation_id}/", headers=headers
            )
            opened = time.monotonic()
            connected, _ = await communicator.connect()
            if not connected:
                raise RuntimeError(f"the websocket for {label} was refused")
            # On connect the page is caught up with how the latest reply ended.
            while not await communicator.receive_nothing(timeout=SETTLE_SECONDS):
                await communicator.receive_from()
            connect_queries = len(log.since(opened))
            warmup = await one_turn(communicator, log, f"Warm-up question for {label}")
            turns = [
                await one_turn(communicator, log, f"Question {number} for {label}")
                for number in range(MEASURED_TURNS)
            ]
            await communicator.disconnect()
            results[label] = {
                "queries_on_connect": connect_queries,
                "first_turn_queries": warmup["queries"],
                "queries_per_turn": [turn["queries"] for turn in turns],
                "before_first_delta": [turn["before_first_delta"] for turn in turns],
                "while_streaming": [turn["while_streaming"] for turn in turns],
                "after_last_delta": [turn["after_last_delta"] for turn in turns],
                "statuses": sorted({turn["status"] for turn in turns}),
                "statements": turns[-1]["statements"],
            }
    finally:
        await database_sync_to_async(log.uninstall)()
    return results


def count_page_queries(pages: dict[str, str], cookies: dict[str, str]) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = cookies["sessionid"]
    counts = {}
    for label, path in pages.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        counts[label] = len(captured.captured_queries)
    return counts


def time_pages(app: Service, pages: dict[str, str], cookies: dict[str, str]) -> dict[str, Any]:
    """Round-robin over the pages, so that each sees the same machine."""
    took: dict[str, list[float]] = {label: [] for label in pages}
    sizes: dict[str, int] = {}
    with httpx2.Client(
        base_url=app.url, headers={"Cookie": cookie_header(cookies)}, timeout=30
    ) as client:
        for round_number in range(PAGE_WARMUP + PAGE_REQUESTS):
            for label, path in pages.items():
                began = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                sizes[label] = len(response.content)
                if round_number >= PAGE_WARMUP:
                    took[label].append(elapsed)
    return {
        label: {"path": pages[label], "bytes": sizes[label], "ms": summary(took[label])}
        for label in pages
    }


def main() -> None:
    parser = common_arguments(__doc__ or "")
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("turn_cost", args)
    with running_stack(stack):
        from bench import data  # the models load once the bench settings are in place

        simulator = stack.start_simulator()
        stateful = data.add_deployment(simulator, "Simulator", SIMULATOR_OPTIONS)
        stateless = data.add_deployment(
            simulator, "Simulator, stateless", SIMULATOR_OPTIONS, stateless=True, default=False
        )
        reader, chatter = data.create_users(2)
        turn_conversations = {}
        for deployment, policy in ((stateful, "stateful"), (stateless, "stateless")):
            for history in HISTORIES:
                (conversation,) = data.create_conversations([chatter], deployment, 1)
                data.add_history(conversation, history)
                turn_conversations[f"{policy}, {history} messages"] = conversation.pk
        print(f"making {LIST_CONVERSATIONS:,} conversations and one of {PAGE_MESSAGES:,} messages")
        listed = data.create_conversations([reader], stateful, LIST_CONVERSATIONS, titled=True)
        data.add_history(listed[-1], PAGE_MESSAGES)
        last_page = -(-LIST_CONVERSATIONS // 30)
        pages = {
            f"conversation page, {PAGE_MESSAGES} messages": f"/c/{listed[-1].pk}/",
            f"conversation list, {LIST_CONVERSATIONS} conversations": "/c/",
            "conversation list, page 2": "/c/?page=2",
            f"conversation list, last page ({last_page})": f"/c/?page={last_page}",
        }
        app = stack.start_app()
        chatter_cookies = sign_in(app.url, chatter.username)
        reader_cookies = sign_in(app.url, reader.username)

        print("counting queries per turn ...", flush=True)
        turns = asyncio.run(count_turn_queries(app.url, turn_conversations, chatter_cookies))
        print("counting queries per page ...", flush=True)
        page_queries = count_page_queries(pages, reader_cookies)
        print("timing pages ...", flush=True)
        page_times = time_pages(app, pages, reader_cookies)
        for label, figures in page_times.items():
            figures["queries"] = page_queries[label]

        print(
            table(
                [
                    [
                        label,
                        figures["queries_on_connect"],
                        figures["first_turn_queries"],
                        "/".join(map(str, figures["queries_per_turn"])),
                        "/".join(map(str, figures["while_streaming"])),
                    ]
                    for label, figures in turns.items()
                ],
                ["conversation", "on connect", "first turn", "per turn", "while streaming"],
            )
        )
        print(
            table(
                [
                    [
                        label,
                        f["queries"],
                        f["bytes"],
                        f["ms"]["p50"],
                        f["ms"]["p95"],
                        f["ms"]["p99"],
                    ]
                    for label, f in page_times.items()
                ],
                ["page", "queries", "bytes", "p50 ms", "p95 ms", "p99 ms"],
            )
        )
        per_turn = [count for figures in turns.values() for count in figures["queries_per_turn"]]
        streaming = [count for figures in turns.values() for count in figures["while_streaming"]]
        conversation_page = page_times[f"conversation page, {PAGE_MESSAGES} messages"]["ms"]
        list_page = page_times[f"conversation list, {LIST_CONVERSATIONS} conversations"]["ms"]
        goals = [
            {
                "goal": f"queries per turn <= {QUERIES_PER_TURN_GOAL}, constant, none per delta",
                "measured": {"most": max(per_turn), "fewest": min(per_turn)},
                "met": max(per_turn) <= QUERIES_PER_TURN_GOAL
                and all(len(set(figures["queries_per_turn"])) == 1 for figures in turns.values())
                and not any(streaming),
            },
            {
                "goal": f"conversation page of {PAGE_MESSAGES} messages: p99 <= "
                f"{CONVERSATION_PAGE_GOAL_MS:g} ms",
                "measured_ms": conversation_page,
                "met": conversation_page["p99"] <= CONVERSATION_PAGE_GOAL_MS,
            },
            {
                "goal": f"conversation list of {LIST_CONVERSATIONS} conversations: p99 <= "
                f"{LIST_PAGE_GOAL_MS:g} ms",
                "measured_ms": list_page,
                "met": list_page["p99"] <= LIST_PAGE_GOAL_MS,
            },
        ]
        for goal in goals:
            print(f"{'met ' if goal['met'] else 'MISSED'}  {goal['goal']}")
        write_results(
            stack,
            started,
            {"turns": turns, "pages": page_times},
            conditions={
                **stack.conditions(),
                "simulator": SIMULATOR_OPTIONS,
                "turns": f"1 first turn, then {MEASURED_TURNS} counted, per conversation",
                "page_timing": f"{PAGE_REQUESTS} requests per page after {PAGE_WARMUP} warm-up, "
                "round-robin, keep-alive client on loopback; time to the last byte",
            },
            goals=goals,
        )


if __name__ == "__main__":
    main()
