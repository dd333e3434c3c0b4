"""The sidebar search at 100,000 messages (the search issue): before and after scoping it to
the owner's messages and indexing it.

The database is the PostgreSQL database that DATABASE_URL names: the run drops it, creates it
afresh, migrates it and fills it with 200 people and 100,000 messages (500 each, in 25
conversations of 20). Only use a database you do not mind losing.

Each term is typed key by key, as the search box sends it (``b``, ``bu``, ``bud``...), by 5
people in turn; every prefix runs the search view itself (``conversation_list``, Django's test
client, a real session) and the time of its SQL statements is summed (the count and the page
the paginator asks for). Three variants, one after another on the same data and the same
machine:

- ``before``: the search as it was (messages matched across every user, then filtered to the
  owner's conversations), without the trigram indexes;
- ``scoped, no index``: this code, with the trigram indexes dropped;
- ``scoped + index``: this code as migrated (pg_trgm GIN indexes on UPPER(text), UPPER(title)).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import django
import psycopg

from bench.harness import (
    RESULTS_DIR,
    ROOT,
    code_version,
    command_line,
    machine,
    summary,
    table,
)

PEOPLE = 200
CONVERSATIONS_EACH = 25
MESSAGES_EACH_CONVERSATION = 20
SEARCHERS = 5
GOAL_MS = 50.0
SEED = 7
# Several kinds of term: common, rarer, a phrase, one nobody wrote, one in titles only.
TERMS = ("budget", "kubernetes", "invoice march", "zebrafish", "roadmap", "the")
PLANTED = {"budget": 0.03, "kubernetes": 0.005, "invoice march": 0.001, "the": 0.6}
TITLE_WORDS = ("Roadmap", "Weekly notes", "Hiring", "Release plan", "Customer call", "Ideas")
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qu", "ph", "st", "ar", "en")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database the benchmark may recreate.")
    return url


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def configure_django(url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
            "DATABASE_POOL": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    django.setup()


def sentence(rng: random.Random, vocabulary: list[str]) -> str:
    words = [rng.choice(vocabulary) for _ in range(rng.randint(8, 60))]
    for term, share in PLANTED.items():
        if rng.random() < share:
            words.insert(rng.randrange(len(words) + 1), term)
    return " ".join(words).capitalize() + "."


def fill(rng: random.Random) -> list[Any]:
    """200 people, each with 25 conversations of 20 messages, in a few bulk inserts."""
    from accounts.models import User
    from chat.models import Conversation, Message

    vocabulary = [
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(4000)
    ]
    people = User.objects.bulk_create(
        [User(username=f"searcher{number}") for number in range(PEOPLE)]
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(owner=person, title=f"{rng.choice(TITLE_WORDS)} {number}")
            for person in people
            for number in range(CONVERSATIONS_EACH)
        ]
    )
    batch: list[Message] = []
    for conversation in conversations:
        for number in range(MESSAGES_EACH_CONVERSATION):
            role = Message.Role.USER if number % 2 == 0 else Message.Role.ASSISTANT
            batch.append(
                Message(conversation=conversation, role=role, text=sentence(rng, vocabulary))
            )
        if len(batch) >= 10_000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    return people


def old_search(owner: Any, query: str) -> Any:
    """The search before this change (commit 80bd88a), kept here to measure it."""
    from django.db.models import Q

    from chat.models import Conversation, Message

    conversations = Conversation.objects.for_user(owner)
    query = query.strip()
    if not query:
        return conversations
    matching = Message.objects.filter(text__icontains=query).values("conversation_id")
    return conversations.filter(Q(title__icontains=query) | Q(pk__in=matching))


@contextmanager
def search_as(implementation: Callable[..., Any] | None) -> Iterator[None]:
    """Run the view with another search implementation for a while."""
    from chat.models import ConversationQuerySet

    if implementation is None:
        yield
        return
    current = ConversationQuerySet.search

    def replaced(self: Any, *, owner: Any, query: str) -> Any:
        return implementation(owner, query)

    ConversationQuerySet.search = replaced  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConversationQuerySet.search = current  # type: ignore[method-assign]


class StatementClock:
    """Sums the time of the search's own statements (the count and the page of conversations),
    leaving out the session and user look-ups every signed-in request makes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if 'FROM "chat_conversation"' not in sql:
            return execute(sql, params, many, context)
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began
            self.statements += 1


def set_indexes(present: bool) -> None:
    """The trigram indexes made or dropped as their migration does (migrating back to it would
    undo every later migration as well, and the code of today would not run)."""
    from django.db import connection

    trigram = importlib.import_module("chat.migrations.0005_search_trigram_indexes")
    with connection.schema_editor() as editor:
        (trigram.add_indexes if present else trigram.remove_indexes)(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chat_message; ANALYZE chat_conversation")


def prefixes(term: str) -> list[str]:
    return [term[:length] for length in range(1, len(term) + 1) if not term[:length].endswith(" ")]


def measure(variant: str, clients: list[Any], rounds: int) -> dict[str, Any]:
    from django.db import connection
    from django.urls import reverse

    url = reverse("conversation_list")
    query_ms: dict[str, list[float]] = {term: [] for term in TERMS}
    view_ms: list[float] = []
    statements = 0
    for _ in range(rounds):
        for client in clients:
            for term in TERMS:
                for prefix in prefixes(term):
                    clock = StatementClock()
                    began = time.perf_counter()
                    with connection.execute_wrapper(clock):
                        response = client.get(url, {"q": prefix})
                    view_ms.append(time.perf_counter() - began)
                    if response.status_code != 200:
                        raise RuntimeError(f"{variant}: {prefix!r} answered {response.status_code}")
                    query_ms[term].append(clock.seconds)
                    statements = clock.statements
    every = [value for values in query_ms.values() for value in values]
    return {
        "queries_ms": summary(every),
        "queries_ms_by_term": {term: summary(values) for term, values in query_ms.items()},
        "view_ms": summary(view_ms),
        "statements_per_search": statements,
    }


def server_ms(owner: Any, query: str) -> float:
    """PostgreSQL's own execution time of the page query, free of the client's load."""
    plan = explain(owner, query)
    line = next(line for line in plan.splitlines() if line.startswith("Execution Time"))
    return float(line.split(":")[1].split()[0])


def explain(owner: Any, query: str) -> str:
    from django.db import connection

    from chat.models import Conversation

    queryset = Conversation.objects.search(owner=owner, query=query).only("pk", "title")[:30]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1, help="times each person types each term")
    args = parser.parse_args()
    started = time.monotonic()
    url = database_url()
    code = code_version()
    machine_at_start = machine()
    print("recreating and migrating the database ...", flush=True)
    recreate_database(url)
    configure_django(url)
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    rng = random.Random(SEED)
    print(f"filling {PEOPLE * CONVERSATIONS_EACH * MESSAGES_EACH_CONVERSATION:,} messages ...")
    fill_began = time.monotonic()
    people = fill(rng)
    fill_s = time.monotonic() - fill_began

    searchers = rng.sample(people, SEARCHERS)
    clients = []
    for person in searchers:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(person)
        clients.append(client)

    variants: dict[str, tuple[bool, Callable[..., Any] | None]] = {
        "before": (False, old_search),
        "scoped, no index": (False, None),
        "scoped + index": (True, None),
    }
    figures: dict[str, Any] = {}
    for variant, (indexed, implementation) in variants.items():
        print(f"measuring {variant} ...", flush=True)
        set_indexes(indexed)
        with search_as(implementation):
            measure(variant, clients[:2], 1)  # warm the caches and the plan
            figures[variant] = measure(variant, clients, args.rounds)
            figures[variant]["postgresql_execution_ms"] = summary(
                [
                    server_ms(person, prefix) / 1000
                    for person in searchers
                    for term in TERMS
                    for prefix in prefixes(term)
                ]
            )
    plans = {term: explain(searchers[0], term) for term in ("kubernetes", "b", "the")}

    rows = [
        [
            variant,
            result["queries_ms"]["count"],
            result["queries_ms"]["p50"],
            result["queries_ms"]["p95"],
            result["queries_ms"]["max"],
            result["view_ms"]["p50"],
            result["postgresql_execution_ms"]["p50"],
            result["postgresql_execution_ms"]["max"],
        ]
        for variant, result in figures.items()
    ]
    print(
        table(
            rows,
            ["variant", "searches", "SQL p50", "p95", "max", "view p50", "PG p50", "PG max (ms)"],
        )
    )
    goal_met = figures["scoped + index"]["queries_ms"]["max"] < GOAL_MS
    print(f"goal (every search's SQL under {GOAL_MS:.0f} ms at 100k messages): {goal_met}")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "search.json"
    document = {
        "benchmark": "search",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine_at_start,
        "code": code,
        "data": {
            "people": PEOPLE,
            "conversations": PEOPLE * CONVERSATIONS_EACH,
            "messages": PEOPLE * CONVERSATIONS_EACH * MESSAGES_EACH_CONVERSATION,
            "planted_term_shares": PLANTED,
            "fill_s": round(fill_s, 1),
            "searchers": SEARCHERS,
            "terms": {term: prefixes(term) for term in TERMS},
        },
        "goal_ms": GOAL_MS,
        "goal_met": goal_met,
        "figures": figures,
        "plans_scoped_indexed": plans,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
