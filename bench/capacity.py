"""How far one app process goes (issue 6, figure 3).

Conversations streaming through the app are added step by step. At each step every conversation
asks once, at a random moment within four seconds, for a reply paced at 20 deltas per second
(20 s); ten conversations ask the simulator directly with the SDK, their lag the step's baseline.
A window from 8 s to 18 s, where every reply streams and none has ended, measures the lag of each
delta that arrives in it (both paths), the deltas relayed per second, and the CPU and RSS of the
app, the simulator, this load generator and PostgreSQL: the relay's own cost, without turns
starting or ending (the memory benchmark gives the cost of a turn). The lag while the turns
start (the first 8 s) is reported too. The ramp stops at the first step whose p99 added lag in
the window passes 50 ms. Then the floor (``bench/floor.py``, the minimal relay, pinned like the
app) is ramped the same way, in the same run (``--targets`` picks either).

In the same run, the load generator measures what parsing a stream costs per delta through the
``openai`` SDK's event objects, through its raw streaming response (lines only), and through the
app's gateway (``chat.llm.stream_reply``, the raw response and only the lines that matter).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import openai
import uvloop

from bench.harness import (
    Meter,
    Profile,
    Service,
    common_arguments,
    freeze_heap,
    running_stack,
    stack_from,
    table,
    usage,
    write_results,
)
from bench.lanes import (
    TEXT_DELTA,
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
from chat import llm

if TYPE_CHECKING:
    from chat.models import Deployment

PACE = Pace(ttft_ms=300, tps=20)
REPLY_TOKENS = 400  # 20 s replies
STEPS = (50, 100, 200, 300, 400, 500, 600, 700, 800, 1000)
CONTROL_LANES = 10
STAGGER_SECONDS = 4.0
WINDOW_FROM_SECONDS = 8.0  # the turns' starts are done with; no reply has ended before 20 s
WINDOW_SECONDS = 10.0
LAG_LIMIT_MS = 50.0
USERS = 60  # sockets per user stay under CHAT_MAX_SOCKETS_PER_USER at every step
PARSE_WORDS = 3000
PARSE_ROUNDS = 4
DELTAS_PER_CORE_GOAL = 10_000
TARGETS = ("app", "floor")


async def ask(lane: Lane, text: str, delay: float, turns: list[Turn]) -> None:
    await asyncio.sleep(delay)
    turn = Turn(lane.path, text)
    turns.append(turn)
    await lane.turn(turn)


async def ramp(
    target: Target,
    simulator: Service,
    meter: Meter,
    steps_wanted: list[int],
    seed: int,
    profiling: bool,
) -> list[dict[str, Any]]:
    """One round of turns per step: every conversation asks once, at a random moment within
    the first seconds; the window falls where every reply is streaming and none has ended.
    The sockets stay open from one step to the next."""
    rng = random.Random(seed)
    client = sdk_client(simulator.url)
    control: list[Lane] = [
        DirectLane(client, PACE.model_on(simulator.url)) for _ in range(CONTROL_LANES)
    ]
    relay: list[Socket] = []
    steps: list[dict[str, Any]] = []
    print(f"\n{target.role}:", flush=True)
    try:
        for step in steps_wanted:
            opening = range(len(relay), step)
            relay += await asyncio.gather(*(target.open(index) for index in opening))
            turns: list[Turn] = []
            profile = Profile(target.service, f"step-{step}") if profiling else None
            round_began = time.time()
            async with asyncio.TaskGroup() as group:
                for index, lane in enumerate([*control, *relay]):
                    text = message_text(f"{lane.path}{step}x{index}", REPLY_TOKENS)
                    group.create_task(ask(lane, text, rng.uniform(0, STAGGER_SECONDS), turns))
                await asyncio.sleep(WINDOW_FROM_SECONDS)
                with profile or contextlib.nullcontext():
                    before, opened_at = meter.read(), time.time()
                    await asyncio.sleep(WINDOW_SECONDS)
                    after, closed_at = meter.read(), time.time()
            received = await received_times(simulator.url)
            figures = step_figures(
                target, step, turns, received, (opened_at, closed_at), usage(before, after)
            )
            starting = timings(turns, PACE, received, (round_began, opened_at))[target.name]
            figures["relay_lag_while_turns_start_ms"] = starting.figures()["delta_lag_ms"]
            if profile is not None:
                figures["profile"] = profile.summary()
            steps.append(figures)
            report(figures, header=len(steps) == 1)
            if figures["added_lag_p99_ms"] > LAG_LIMIT_MS:
                break
    finally:
        await asyncio.gather(*(lane.close() for lane in relay), return_exceptions=True)
        await client.close()
    return steps


def step_figures(
    target: Target,
    step: int,
    turns: list[Turn],
    received: dict[str, float],
    window: tuple[float, float],
    used: dict[str, Any],
) -> dict[str, Any]:
    by_path = timings(turns, PACE, received, window)
    relay, direct = by_path[target.name].figures(), by_path["direct"].figures()
    seconds = window[1] - window[0]
    cores = used["cpu_cores"][target.role]
    relayed_per_second = relay["deltas"] / seconds
    return {
        "relay": target.role,
        "conversations": step,
        "relayed_deltas_per_s": round(relayed_per_second),
        "relay_frames_per_s": round(relay["frames"] / seconds),
        "relay_cpu_cores": cores,
        "relayed_deltas_per_relay_core_s": round(relayed_per_second / cores) if cores else 0,
        "relay_cpu_us_per_delta": (
            round(cores * seconds / relay["deltas"] * 1e6, 1) if relay["deltas"] else None
        ),
        "relay_lag_ms": relay["delta_lag_ms"],
        "direct_lag_ms": direct["delta_lag_ms"],
        "simulator_schedule_error_ms": direct.get("simulator_schedule_error_ms", {}),
        "added_lag_p99_ms": round(
            relay["delta_lag_ms"].get("p99", 0) - direct["delta_lag_ms"].get("p99", 0), 2
        ),
        "usage": used,
        "turns_missing_from_simulator_log": relay.get("turns_missing_from_simulator_log", 0),
    }


def report(step: dict[str, Any], *, header: bool) -> None:
    lag = step["relay_lag_ms"]
    used = step["usage"]
    header_line, row = table(
        [
            [
                step["conversations"],
                step["relayed_deltas_per_s"],
                step["relay_frames_per_s"],
                f"{lag.get('p50')}/{lag.get('p95')}/{lag.get('p99')}/{lag.get('max')}",
                step["direct_lag_ms"].get("p99"),
                step["added_lag_p99_ms"],
                step["relay_lag_while_turns_start_ms"].get("p99"),
                step["relay_cpu_cores"],
                step["relayed_deltas_per_relay_core_s"],
                used["rss_mib"][step["relay"]],
                used["cpu_cores"]["simulator"],
                used["cpu_cores"]["driver"],
                used["other_processes_cpu_cores"],
            ]
        ],
        [
            "conv",
            "deltas/s",
            "frames/s",
            "relay lag p50/95/99/max ms",
            "direct p99",
            "added p99",
            "p99 as turns start",
            "relay cores",
            "deltas/s/core",
            "relay RSS MiB",
            "sim cores",
            "driver cores",
            "others",
        ],
    ).splitlines()
    print(f"{header_line}\n{row}" if header else row, flush=True)


async def sdk_events(client: openai.AsyncOpenAI, model: str) -> int:
    stream = await client.responses.create(model=model, input="Go", store=False, stream=True)
    return sum([1 async for event in stream if event.type == TEXT_DELTA])


async def raw_lines(client: openai.AsyncOpenAI, model: str) -> int:
    deltas = 0
    async with client.responses.with_streaming_response.create(
        model=model, input="Go", store=False, stream=True
    ) as response:
        async for line in response.iter_lines():
            deltas += line.startswith("event: response.output_text.delta")
    return deltas


async def gateway(deployment: Deployment) -> int:
    stream = llm.stream_reply(
        deployment, input="Go", previous_response_id=None, instructions="", store=False
    )
    return sum([1 async for event in stream if isinstance(event, llm.TextDelta)])


async def parsing_costs(simulator: Service, deployment: Deployment) -> dict[str, Any]:
    """CPU per delta of three ways to read the same stream, taken in turns to share the noise."""
    client = sdk_client(simulator.url)
    model = deployment.deployment_name
    ways: dict[str, Callable[[], Awaitable[int]]] = {
        "sdk_event_objects": lambda: sdk_events(client, model),
        "sdk_raw_response_lines_only": lambda: raw_lines(client, model),
        "app_gateway_raw_response": lambda: gateway(deployment),
    }
    cpu = dict.fromkeys(ways, 0.0)
    deltas = dict.fromkeys(ways, 0)
    for _ in range(PARSE_ROUNDS):
        for name, read in ways.items():
            began = time.process_time()
            deltas[name] += await read()
            cpu[name] += time.process_time() - began
    await client.close()
    return {
        name: {"deltas": deltas[name], "cpu_us_per_delta": round(cpu[name] / deltas[name] * 1e6, 2)}
        for name in ways
    }


async def measure(
    targets: list[Target],
    simulator: Service,
    meter: Meter,
    parse_deployment: Deployment,
    steps_wanted: list[int],
    seed: int,
    profiling: bool,
) -> dict[str, Any]:
    steps = {
        target.role: await ramp(target, simulator, meter, steps_wanted, seed, profiling)
        for target in targets
    }
    print("\nparsing cost per delta in this load generator ...", flush=True)
    parsing = await parsing_costs(simulator, parse_deployment)
    for name, cost in parsing.items():
        print(f"  {name}: {cost['cpu_us_per_delta']} us per delta ({cost['deltas']} deltas)")
    return {"steps": steps, "parsing_cost_per_delta": parsing}


def summarise(steps: list[dict[str, Any]]) -> dict[str, Any]:
    within = [step for step in steps if step["added_lag_p99_ms"] <= LAG_LIMIT_MS]
    best = max(within, key=lambda step: step["relayed_deltas_per_s"], default=None)
    per_core = max((step["relayed_deltas_per_relay_core_s"] for step in within), default=0)
    return {
        "most_conversations_within_50ms_p99": best["conversations"] if best else 0,
        "relayed_deltas_per_s_there": best["relayed_deltas_per_s"] if best else 0,
        "best_relayed_deltas_per_relay_core_s_within_50ms_p99": per_core,
        "best_relayed_deltas_per_relay_core_s_any_step": max(
            (step["relayed_deltas_per_relay_core_s"] for step in steps), default=0
        ),
        "goal": f">= {DELTAS_PER_CORE_GOAL} relayed deltas/s per app core",
        "met": per_core >= DELTAS_PER_CORE_GOAL,
        "ramp_ended": (
            "p99 added lag passed 50 ms"
            if steps and steps[-1]["added_lag_p99_ms"] > LAG_LIMIT_MS
            else "largest step reached"
        ),
    }


def main() -> None:
    parser = common_arguments(__doc__ or "", load=True)
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=list(STEPS),
        help="concurrent conversations at each step of the ramp",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=TARGETS,
        default=list(TARGETS),
        help="the relays ramped, one after the other (default: the app, then the floor)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("capacity", args)
    with running_stack(stack):
        from bench import data  # the models load once the bench settings are in place

        simulator = stack.start_simulator()
        deployment = data.add_deployment(simulator, "Simulator", PACE.options)
        users = data.create_users(USERS)
        conversations = data.create_conversations(users, deployment, max(args.steps))
        probe = data.unsaved_deployment(simulator, f"ttft_ms=0,tps=0,words={PARSE_WORDS}")
        targets: list[Target] = []
        if "app" in args.targets:
            app = stack.start_app()
            targets.append(page_target(app, data.signed_in_pages(app, conversations)))
        if "floor" in args.targets:
            targets.append(floor_target(stack.start_floor(PACE.model_on(simulator.url))))
        freeze_heap()
        figures = asyncio.run(
            measure(
                targets,
                simulator,
                Meter(stack),
                probe,
                args.steps,
                args.seed,
                args.profile,
            ),
            loop_factory=uvloop.new_event_loop,
        )
        figures["summary"] = {role: summarise(steps) for role, steps in figures["steps"].items()}
        print(f"\n{figures['summary']}")
        write_results(
            stack,
            started,
            figures,
            conditions={
                **stack.conditions(),
                "simulator": f"ttft {PACE.ttft_ms} ms, {PACE.tps:g} deltas/s, echo",
                "reply_tokens": REPLY_TOKENS,
                "rounds": f"per step every conversation asks once, within {STAGGER_SECONDS:g} s; "
                f"measured from {WINDOW_FROM_SECONDS:g} s for {WINDOW_SECONDS:g} s, while "
                "every reply streams",
                "control_lanes": f"{CONTROL_LANES} direct SDK conversations in every round",
                "floor": "bench/floor.py: Starlette websocket route, openai SDK raw streaming "
                "response, text deltas only, pinned like the app; ramped after the app",
                "profiled": args.profile,
            },
        )


if __name__ == "__main__":
    main()
