"""What the app process holds in memory (issue 6, figure 5).

1. Idle websockets: conversation pages are opened step by step up to 1,000 and the app's RSS is
   read after each step; the slope is the memory per idle connection.
2. Active streams: replies are started on those connections step by step (slow ones, so that
   all of them are still streaming when RSS is read); the slope over the idle level is the
   memory per active stream.
3. Many turns: 1,000 turns of warm-up, then 10,000 more in batches of 1,000 (quick replies,
   every page reconnecting after a few turns); RSS is read after each batch, the load paused.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any

import uvloop

from bench.harness import (
    Meter,
    Service,
    common_arguments,
    freeze_heap,
    running_stack,
    stack_from,
    table,
    usage,
    write_results,
)
from bench.lanes import Pace, Page, RelayLane, Turn, message_text

CONNECTION_STEPS = (0, 100, 250, 500, 1000)
STREAM_STEPS = (100, 250, 500, 1000)
STREAM_PACE = Pace(ttft_ms=0, tps=4)
STREAM_TOKENS = 160  # 40 s: every stream is still running at the last reading
TURN_PACE = Pace(ttft_ms=0, tps=400)
TURN_TOKENS = 60
TURN_LANES = 50
TURNS_PER_PAGE = 5
WARMUP_TURNS = 1000
MEASURED_TURNS = 10_000
BATCH_TURNS = 1000
SETTLE_SECONDS = 2.0
USERS = 8
IDLE_GOAL_KIB = 64
STREAM_GOAL_KIB = 256
# Growth within this share of the warm RSS counts as noise (allocator arenas, caches filling).
GROWTH_NOISE_SHARE = 0.02


def settled_rss(meter: Meter) -> int:
    """The app's RSS, the median of a few readings once things have settled."""
    readings = []
    for _ in range(5):
        readings.append(meter.rss("app"))
        time.sleep(0.2)
    return int(statistics.median(readings))


def slope_kib(points: list[tuple[int, int]], *, per: int = 1) -> float:
    """Least-squares KiB per ``per`` units from (count, RSS bytes) points."""
    xs = [x for x, _ in points]
    ys = [y / 1024 for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return round(per * covariance / sum((x - mean_x) ** 2 for x in xs), 1)


async def idle_connections(
    app: Service, meter: Meter, pages: list[Page]
) -> tuple[list[RelayLane], list[tuple[int, int]]]:
    lanes: list[RelayLane] = []
    points = []
    for step in CONNECTION_STEPS:
        lanes += await asyncio.gather(
            *(RelayLane.open(app.url, page) for page in pages[len(lanes) : step])
        )
        await asyncio.sleep(SETTLE_SECONDS)
        points.append((len(lanes), await asyncio.to_thread(settled_rss, meter)))
        print(f"  {len(lanes):5} idle websockets: RSS {points[-1][1] / 2**20:.1f} MiB", flush=True)
    return lanes, points


async def active_streams(lanes: list[RelayLane], meter: Meter) -> list[tuple[int, int]]:
    points = [(0, await asyncio.to_thread(settled_rss, meter))]
    turns: list[Turn] = []
    running: list[asyncio.Task[None]] = []
    for step in STREAM_STEPS:
        for index in range(len(running), step):
            turn = Turn("relay", message_text(f"stream{index}", STREAM_TOKENS))
            turns.append(turn)
            running.append(asyncio.create_task(lanes[index].turn(turn)))
        await asyncio.sleep(SETTLE_SECONDS)
        points.append((step, await asyncio.to_thread(settled_rss, meter)))
        print(f"  {step:5} active streams: RSS {points[-1][1] / 2**20:.1f} MiB", flush=True)
    if any(turn.done_at for turn in turns):
        raise RuntimeError("some streams ended before the last reading; make them longer")
    await asyncio.gather(*running)
    return points


class TurnLoad:
    """Lanes that ask, take the quick reply, and open another of their conversations (a new
    page, a new websocket) every few turns."""

    def __init__(self, app: Service, pages: list[Page]) -> None:
        self.app = app
        # Each lane has conversations of its own, so that no two ask in one at once.
        self.pages = [pages[lane::TURN_LANES] for lane in range(TURN_LANES)]
        self.tags = count()
        self.visits = [count() for _ in range(TURN_LANES)]
        self.failed: Counter[str] = Counter()
        self.stray_frames = 0

    async def batch(self, turns: int) -> None:
        budget = iter(range(turns))
        await asyncio.gather(*(self._lane(lane, budget) for lane in range(TURN_LANES)))

    async def _lane(self, lane: int, budget: Iterator[int]) -> None:
        pages = self.pages[lane]
        while True:
            page = pages[next(self.visits[lane]) % len(pages)]
            socket = await RelayLane.open(self.app.url, page)
            try:
                for _ in range(TURNS_PER_PAGE):
                    if next(budget, None) is None:
                        return
                    turn = Turn("relay", message_text(f"turn{next(self.tags)}", TURN_TOKENS))
                    await socket.turn(turn)
                    self.stray_frames += turn.stray_frames
                    if not turn.complete:
                        self.failed[turn.status] += 1
            finally:
                await socket.close()


async def many_turns(app: Service, meter: Meter, pages: list[Page]) -> dict[str, Any]:
    load = TurnLoad(app, pages)
    began = time.monotonic()
    await load.batch(WARMUP_TURNS)
    await asyncio.sleep(SETTLE_SECONDS)
    warm = await asyncio.to_thread(settled_rss, meter)
    print(f"  after {WARMUP_TURNS} warm-up turns: RSS {warm / 2**20:.1f} MiB", flush=True)
    points = [(0, warm)]
    before = meter.read()
    for done in range(BATCH_TURNS, MEASURED_TURNS + 1, BATCH_TURNS):
        await load.batch(BATCH_TURNS)
        await asyncio.sleep(SETTLE_SECONDS)
        points.append((done, await asyncio.to_thread(settled_rss, meter)))
        print(f"  after {done:6} more turns: RSS {points[-1][1] / 2**20:.1f} MiB", flush=True)
    elapsed = time.monotonic() - began
    used = usage(before, meter.read())
    total = WARMUP_TURNS + MEASURED_TURNS
    final = points[-1][1]
    return {
        "turns": total,
        "turns_per_s": round(total / elapsed, 1),
        # With a page opened and closed every few turns, as the load does it.
        "app_cpu_ms_per_turn": round(
            used["cpu_cores"]["app"] * used["seconds"] / MEASURED_TURNS * 1000, 2
        ),
        "failed_turns": dict(load.failed),
        "frames_about_other_replies": load.stray_frames,
        "rss_mib_after_warmup": round(warm / 2**20, 1),
        "rss_mib_after_measured_turns": round(final / 2**20, 1),
        "growth_mib": round((final - warm) / 2**20, 1),
        "growth_kib_per_1000_turns": slope_kib(points, per=1000),
        "rss_mib_by_turns": [[turns, round(rss / 2**20, 1)] for turns, rss in points],
    }


async def measure(
    app: Service, meter: Meter, idle_pages: list[Page], turn_pages: list[Page]
) -> dict[str, Any]:
    print("idle websockets ...", flush=True)
    lanes, idle = await idle_connections(app, meter, idle_pages)
    print("active streams ...", flush=True)
    streaming = await active_streams(lanes, meter)
    await asyncio.gather(*(lane.close() for lane in lanes))
    print("many turns ...", flush=True)
    turns = await many_turns(app, meter, turn_pages)
    return {
        "idle_websockets": {
            "rss_mib_by_connections": [[n, round(rss / 2**20, 1)] for n, rss in idle],
            "kib_per_connection": slope_kib(idle),
        },
        "active_streams": {
            "rss_mib_by_streams": [[n, round(rss / 2**20, 1)] for n, rss in streaming],
            "kib_per_stream_over_idle": slope_kib(streaming),
        },
        "many_turns": turns,
    }


def main() -> None:
    parser = common_arguments(__doc__ or "")
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("memory", args)
    with running_stack(stack):
        from bench import data  # the models load once the bench settings are in place

        simulator = stack.start_simulator()
        streaming = data.add_deployment(simulator, "Slow", STREAM_PACE.options)
        quick = data.add_deployment(simulator, "Quick", TURN_PACE.options, default=False)
        users = data.create_users(USERS)
        idle = data.create_conversations(users, streaming, max(CONNECTION_STEPS))
        turning = data.create_conversations(users, quick, TURN_LANES * 4)
        app = stack.start_app()
        idle_pages = data.signed_in_pages(app, idle)
        turn_pages = data.signed_in_pages(app, turning)
        freeze_heap()
        figures = asyncio.run(
            measure(app, Meter(stack), idle_pages, turn_pages), loop_factory=uvloop.new_event_loop
        )
        idle_kib = figures["idle_websockets"]["kib_per_connection"]
        stream_kib = figures["active_streams"]["kib_per_stream_over_idle"]
        turns = figures["many_turns"]
        goals = [
            {
                "goal": f"RSS per idle websocket <= {IDLE_GOAL_KIB} KiB",
                "measured_kib": idle_kib,
                "met": idle_kib <= IDLE_GOAL_KIB,
            },
            {
                "goal": f"RSS per active stream <= {STREAM_GOAL_KIB} KiB",
                "measured_kib": stream_kib,
                "met": stream_kib <= STREAM_GOAL_KIB,
            },
            {
                "goal": f"no RSS growth over {MEASURED_TURNS:,} turns beyond noise "
                f"({GROWTH_NOISE_SHARE:.0%} of the RSS after warm-up)",
                "measured_mib": turns["growth_mib"],
                "met": turns["growth_mib"] <= GROWTH_NOISE_SHARE * turns["rss_mib_after_warmup"],
            },
        ]
        print(
            table(
                [
                    ["idle websocket", f"{idle_kib} KiB"],
                    ["active stream (over idle)", f"{stream_kib} KiB"],
                    ["RSS after warm-up", f"{turns['rss_mib_after_warmup']} MiB"],
                    [
                        f"RSS after {MEASURED_TURNS:,} more turns",
                        f"{turns['rss_mib_after_measured_turns']} MiB",
                    ],
                    ["turns per second", turns["turns_per_s"]],
                    ["app CPU per turn", f"{turns['app_cpu_ms_per_turn']} ms"],
                ],
                ["measure", "value"],
            )
        )
        write_results(
            stack,
            started,
            figures,
            conditions={
                **stack.conditions(),
                "streams": f"{STREAM_TOKENS} tokens at {STREAM_PACE.tps:g} deltas/s",
                "turns": f"{TURN_TOKENS}-token replies at {TURN_PACE.tps:g} deltas/s, "
                f"{TURN_LANES} pages at once, each reloaded after {TURNS_PER_PAGE} turns",
                "rss_reading": "median of 5 readings 0.2 s apart, after a 2 s pause",
            },
            goals=goals,
        )


if __name__ == "__main__":
    main()
