"""What the relay adds: to the first token (issue 6, figure 1) and to every delta (figure 2).

At each level, N conversations stream through the app (websocket clients doing what the page
does) while N more ask the simulator the same way directly with the ``openai`` SDK, all in one
run: lanes of both kinds start interleaved at random moments over one reply's length, then turn
again after a short random pause, so arrivals are staggered and both paths see the same machine.
Only turns sent once every lane has started are counted. Then the floor (``bench/floor.py``, the
minimal relay, pinned like the app) carries the same level the same way, in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any

import uvloop

from bench.harness import (
    Meter,
    Profile,
    Reading,
    Service,
    common_arguments,
    difference,
    freeze_heap,
    running_stack,
    stack_from,
    table,
    usage,
    write_results,
)
from bench.lanes import (
    DirectLane,
    Lane,
    Pace,
    Turn,
    message_text,
    received_times,
    sdk_client,
    timings,
)
from bench.targets import Socket, Target, floor_target, page_target

PACE = Pace(ttft_ms=100, tps=20)
THINK_SECONDS = 0.25
USERS = 4


@dataclass(frozen=True, slots=True)
class Level:
    conversations: int
    reply_tokens: int  # longer replies at higher levels keep the turn rate realistic
    turns: int  # counted turns per lane and path


LEVELS = {
    1: Level(1, 20, 60),
    50: Level(50, 100, 3),
    200: Level(200, 200, 2),
}

GOALS = (
    (1, "p50", 2.0),
    (1, "p99", 10.0),
    (200, "p99", 50.0),
)


@dataclass(slots=True)
class LevelRun:
    level: Level
    turns: list[Turn]
    before: Reading
    after: Reading


async def drive_level(
    level: Level, relay: list[Socket], direct: list[DirectLane], meter: Meter, seed: int
) -> LevelRun:
    rng = random.Random(seed)
    reply_seconds = PACE.seconds(level.reply_tokens)
    lanes: list[tuple[str, Lane]] = []
    for index, (relay_lane, direct_lane) in enumerate(zip(relay, direct, strict=True)):
        # Tags of their own for each relay's run, its direct lanes' included.
        tag = f"{relay_lane.path[0]}{level.conversations}x{index}"
        lanes += [(tag, relay_lane), (f"d{tag}", direct_lane)]
    counted: list[Turn] = []
    remaining = len(lanes) * level.turns
    done = asyncio.Event()
    begun = time.time()
    count_from = begun + reply_seconds
    before = meter.read()

    async def keep_turning(tag: str, lane: Lane, delay: float) -> None:
        nonlocal remaining
        await asyncio.sleep(delay)
        taken = 0
        for number in range(10**6):
            if done.is_set():
                return
            turn = Turn(lane.path, message_text(f"{tag}x{number}", level.reply_tokens))
            await lane.turn(turn)
            if turn.sent_at >= count_from and taken < level.turns:
                counted.append(turn)
                taken += 1
                remaining -= 1
                if remaining == 0:
                    done.set()
            await asyncio.sleep(rng.uniform(0, THINK_SECONDS))

    delays = [rng.uniform(0, reply_seconds) for _ in lanes]
    async with asyncio.TaskGroup() as group:
        for (tag, lane), delay in zip(lanes, delays, strict=True):
            group.create_task(keep_turning(tag, lane, delay))
        await done.wait()
        after = meter.read()
    return LevelRun(level, counted, before, after)


async def measure(
    simulator: Service,
    meter: Meter,
    plan: list[tuple[Level, list[Target]]],
    seed: int,
    profiling: bool,
) -> dict[str, dict[str, Any]]:
    client = sdk_client(simulator.url)
    results: dict[str, dict[str, Any]] = {}
    for level, targets in plan:
        for target in targets:
            opening = range(level.conversations)
            relay = await asyncio.gather(*(target.open(index) for index in opening))
            direct = [DirectLane(client, PACE.model_on(simulator.url)) for _ in relay]
            print(
                f"\n{target.role}: {level.conversations} concurrent conversations per path, "
                f"{level.reply_tokens}-token replies at {PACE.tps:g} deltas/s ...",
                flush=True,
            )
            label = f"level-{level.conversations}"
            profile = Profile(target.service, label) if profiling else None
            with profile or contextlib.nullcontext():
                run = await drive_level(level, relay, direct, meter, seed + level.conversations)
            await asyncio.gather(*(lane.close() for lane in relay))
            received = await received_times(simulator.url)
            figures = level_figures(target, run, received)
            if profile is not None:
                figures["profile"] = profile.summary()
            results.setdefault(target.role, {})[str(level.conversations)] = figures
            report(figures)
    await client.close()
    return results


def level_figures(target: Target, run: LevelRun, received: dict[str, float]) -> dict[str, Any]:
    by_path = timings(run.turns, PACE, received)
    relay_figures = by_path[target.name].figures()
    direct_figures = by_path["direct"].figures()
    return {
        "relay_is": target.role,
        "conversations_per_path": run.level.conversations,
        "reply_tokens": run.level.reply_tokens,
        "counted_turns_per_lane": run.level.turns,
        "relay": relay_figures,
        "direct": direct_figures,
        "added_ms": {
            "first_token": difference(
                relay_figures["first_token_ms"], direct_figures["first_token_ms"]
            ),
            "delta_lag": difference(relay_figures["delta_lag_ms"], direct_figures["delta_lag_ms"]),
            "largest_frame_gap": difference(
                relay_figures["largest_frame_gap_ms"], direct_figures["largest_frame_gap_ms"]
            ),
        },
        "usage": usage(run.before, run.after),
    }


def report(level: dict[str, Any]) -> None:
    rows = []
    for path in ("relay", "direct"):
        figures = level[path]
        first, lag, gap = (
            figures["first_token_ms"],
            figures["delta_lag_ms"],
            figures["largest_frame_gap_ms"],
        )
        rows.append(
            [
                level["relay_is"] if path == "relay" else path,
                figures["turns"],
                f"{first['p50']}/{first['p95']}/{first['p99']}",
                figures["model_called_after_ms"]["p50"],
                f"{lag['p50']}/{lag['p95']}/{lag['p99']}/{lag['max']}",
                f"{gap['p50']}/{gap['p99']}/{gap['max']}",
            ]
        )
    added = level["added_ms"]
    rows.append(
        [
            "added",
            "",
            "/".join(str(added["first_token"][key]) for key in ("p50", "p95", "p99")),
            "",
            "/".join(str(added["delta_lag"][key]) for key in ("p50", "p95", "p99")),
            "",
        ]
    )
    print(
        table(
            rows,
            [
                "path",
                "turns",
                "first token p50/95/99 ms",
                "model called after p50",
                "delta lag p50/95/99/max ms",
                "largest gap p50/99/max ms",
            ],
        )
    )
    cores = level["usage"]["cpu_cores"]
    print(
        "CPU (cores): "
        + ", ".join(f"{name} {value}" for name, value in cores.items())
        + f"; other processes {level['usage']['other_processes_cpu_cores']}"
    )


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    checked = []
    for conversations, key, limit in GOALS:
        level = results.get(str(conversations))
        if level is None:
            continue
        added = level["added_ms"]["first_token"][key]
        checked.append(
            {
                "goal": f"first token added at {conversations}: {key} <= {limit:g} ms",
                "measured_ms": added,
                "met": added <= limit,
            }
        )
    return checked


def main() -> None:
    parser = common_arguments(__doc__ or "", load=True)
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        choices=sorted(LEVELS),
        default=sorted(LEVELS),
        help="concurrent conversations per path",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=("app", "floor"),
        default=["app", "floor"],
        help="the relays measured (default: the app, then the floor, at each level)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("relay_latency", args)
    with running_stack(stack):
        from bench import data  # the models load once the bench settings are in place

        simulator = stack.start_simulator()
        deployment = data.add_deployment(simulator, "Simulator", PACE.options)
        users = data.create_users(USERS)
        created = {
            level: data.create_conversations(users, deployment, level) for level in args.levels
        }
        app = stack.start_app() if "app" in args.targets else None
        floor = stack.start_floor(PACE.model_on(simulator.url)) if "floor" in args.targets else None
        plan: list[tuple[Level, list[Target]]] = []
        for level, conversations in created.items():
            targets: list[Target] = []
            if app is not None:
                targets.append(page_target(app, data.signed_in_pages(app, conversations)))
            if floor is not None:
                targets.append(floor_target(floor))
            plan.append((LEVELS[level], targets))
        freeze_heap()
        results = asyncio.run(
            measure(simulator, Meter(stack), plan, args.seed, args.profile),
            loop_factory=uvloop.new_event_loop,
        )
        checked = goals(results["app"]) if "app" in results else []
        for goal in checked:
            print(
                f"{'met ' if goal['met'] else 'MISSED'}  {goal['goal']}: {goal['measured_ms']} ms"
            )
        write_results(
            stack,
            started,
            results,
            conditions={
                **stack.conditions(),
                "simulator": f"ttft {PACE.ttft_ms} ms, {PACE.tps:g} deltas/s, echo",
                "think_time": f"uniform 0-{THINK_SECONDS} s between turns",
                "users": USERS,
                "floor": "bench/floor.py: Starlette websocket route, openai SDK raw streaming "
                "response, text deltas only, pinned like the app; after the app at each level",
            },
            goals=checked,
        )


if __name__ == "__main__":
    main()
