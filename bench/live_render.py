"""What live markdown costs the relay: CPU per relayed delta with the streamed text rendered as
markdown while it streams (``chat.rendering.LiveMarkdown``) and without (each delta escaped and
appended, as before), on 5,000-token replies.

In-process and on one core: the relay of each reply (``chat.replies.relay.Relay``) with one
watching socket whose send costs nothing, so what is measured is the relay's own work per delta:
coalescing, rendering, building the frame, queueing it. Every delta gets its own frame (as at
low load, where each delta goes out at once), the worst case for rendering.
The replies are the simulator's markdown (paragraphs, lists, code, tables), split into its
tokens. The all-in figure is derived: the capacity benchmark's relayed deltas per core
(``results/capacity.json``) with this benchmark's added CPU per delta on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import django

RESULTS = Path(__file__).parent / "results" / "live_render.json"
CAPACITY = Path(__file__).parent / "results" / "capacity.json"
TOKENS_PER_REPLY = 5000
GOAL_RATIO = 1.20


class EscapedOnly:
    """The relay as it was before live markdown: every delta escaped and appended."""

    def __init__(self, message_id: int, *, part: str = "") -> None:
        self.message_id = message_id

    def add(self, text: str) -> str:
        return text

    def snapshot(self) -> tuple[str, str]:
        return "", ""


def replies(count: int) -> list[tuple[str, ...]]:
    from azure_sim.composing import compose_reply, split_tokens

    made = []
    for seed in range(count):
        tokens = split_tokens(compose_reply(seed, TOKENS_PER_REPLY))
        while len(tokens) < TOKENS_PER_REPLY:
            tokens += split_tokens(compose_reply(seed + 1000 + len(tokens), TOKENS_PER_REPLY))
        made.append(tokens[:TOKENS_PER_REPLY])
    return made


async def relay_cpu_per_delta(tokens_of_replies: list[tuple[str, ...]]) -> float:
    from chat.replies.relay import Relay

    async def send(fragment: str) -> None:
        return None

    deltas = 0
    started = time.process_time()
    for number, tokens in enumerate(tokens_of_replies):
        relay = Relay(number + 1)
        relay.watch(send)
        for token in tokens:
            relay.add(token)
            deltas += 1
            await asyncio.sleep(0)  # the watcher's task sends the frame
        relay.finish("")
        await asyncio.sleep(0)
    return (time.process_time() - started) / deltas * 1e6


def measure(rounds: int, count: int) -> dict[str, Any]:
    from chat.replies import relay

    tokens_of_replies = replies(count)
    live_class = relay.LiveMarkdown
    with_live: list[float] = []
    without: list[float] = []
    for _ in range(rounds):
        relay.LiveMarkdown = live_class  # type: ignore[misc]
        with_live.append(asyncio.run(relay_cpu_per_delta(tokens_of_replies)))
        relay.LiveMarkdown = EscapedOnly  # type: ignore[misc,assignment]
        without.append(asyncio.run(relay_cpu_per_delta(tokens_of_replies)))
    relay.LiveMarkdown = live_class  # type: ignore[misc]
    live_us, plain_us = min(with_live), min(without)
    added_us = live_us - plain_us
    figures: dict[str, Any] = {
        "replies": count,
        "tokens_per_reply": TOKENS_PER_REPLY,
        "relay_cpu_us_per_delta_live": round(live_us, 2),
        "relay_cpu_us_per_delta_without": round(plain_us, 2),
        "relay_only_deltas_per_core_live": round(1e6 / live_us),
        "relay_only_deltas_per_core_without": round(1e6 / plain_us),
        "added_cpu_us_per_delta": round(added_us, 2),
        "rounds_live": [round(v, 2) for v in with_live],
        "rounds_without": [round(v, 2) for v in without],
    }
    if CAPACITY.exists():
        capacity = json.loads(CAPACITY.read_text())["figures"]
        all_in = capacity["summary"]["app"].get(
            "best_relayed_deltas_per_relay_core_s_within_50ms_p99"
        )
        if all_in:
            per_delta = 1e6 / float(all_in)
            figures["all_in_deltas_per_core_without"] = round(float(all_in))
            figures["all_in_deltas_per_core_live"] = round(1e6 / (per_delta + added_us))
            figures["all_in_cost_ratio"] = round((per_delta + added_us) / per_delta, 3)
            figures["goal_met"] = figures["all_in_cost_ratio"] <= GOAL_RATIO
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replies", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    figures = measure(args.rounds, args.replies)
    for name, value in figures.items():
        print(f"{name}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": "live_render", "figures": figures}
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
