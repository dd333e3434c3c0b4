"""Short replies with no think time (issue 16): the app against the floor, in one run.

The simulator answers at once (``ttft_ms=0``) with 69 deltas of 3 tokens (about 3 words) at 48
deltas per second, about 1.4 s per reply. Every conversation is a closed loop: a socket asks 4
chained turns, each as soon as the last reply ends, then closes, and the next socket starts a
new conversation (so first turns and chained later turns are both measured). At each level the
app (the real page's websocket, signed in) and then the floor (``bench/floor.py``, a Starlette
route forwarding only text deltas) carry N such conversations, each pinned to the app's CPU in
turn, while up to 20 conversations ask the simulator directly with the SDK: the baseline the
added figures are taken against. Lanes start at random moments over one socket's 4 turns; the
window opens once all have started and counts every turn sent within it (its first token and
the lag of all its deltas) and the CPU of the relay measured per delta that arrived in it, all
in (opening sockets, saving turns and replies, rendering, relaying). The capacity point is the
largest level at which the added lag p99 stays within 50 ms, with every lower level within too.

``--profile`` adds windows at 20 and 50 conversations after the ladder, each relay sampled by
py-spy (GIL holder): the app's time per turn by part of a turn (``bench/turn_profile.py``); and
one at 20 with the app under cProfile, its CPU by package (``bench/package_profile.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import time
from collections import deque
from typing import Any

import httpx2
import openai
import uvloop
from websockets.exceptions import ConnectionClosed

from bench import package_profile, turn_profile
from bench.harness import (
    Meter,
    Profile,
    Service,
    common_arguments,
    freeze_heap,
    running_stack,
    stack_from,
    usage,
    write_results,
)
from bench.lanes import (
    DirectLane,
    Pace,
    Page,
    RelayLane,
    Turn,
    message_text,
    received_times,
    sdk_client,
)
from bench.package_profile import PackageProfile
from bench.short_figures import (
    Phase,
    capacity,
    phase_figures,
    print_packages,
    print_parts,
    report,
)
from bench.targets import Socket, Target, floor_target

PACE = Pace(ttft_ms=0, tps=144, burst=3)  # 48 deltas/s
DELTAS = 69
REPLY_TOKENS = DELTAS * PACE.burst
TURNS_PER_SOCKET = 4
LEVELS = (1, 20, 50, 70, 100, 140, 200)
PROFILE_LEVELS = (20, 50)
CPROFILE_LEVELS = (20,)
PROFILE_RATE = 250
CONTROL_LANES = 20
WINDOW_SECONDS = 8.0
MIN_TURNS = 32  # at one conversation the window stays open until this many turns were sent
USERS = 25  # sockets per user stay well under CHAT_MAX_SOCKETS_PER_USER
TARGETS = ("app", "floor")
REPLY_SECONDS = PACE.seconds(REPLY_TOKENS)
SOCKET_SECONDS = TURNS_PER_SOCKET * REPLY_SECONDS


def app_target(app: Service, pools: list[deque[Page]]) -> Target:
    """Lane ``i`` opens the next unused conversation of user ``i % USERS``."""

    async def open_socket(lane: int) -> Socket:
        pool = pools[lane % len(pools)]
        if not pool:
            raise RuntimeError("out of conversations: raise sockets_needed()")
        return await RelayLane.open(app.url, pool.popleft())

    return Target("relay", app, open_socket)


def sockets_needed(conversations: int) -> int:
    """Sockets one lane may open at this level: one per 4 turns while it runs, and one more."""
    window = max(WINDOW_SECONDS, MIN_TURNS * REPLY_SECONDS / conversations)
    return math.ceil((SOCKET_SECONDS + window + REPLY_SECONDS) / SOCKET_SECONDS) + 1


async def drive(
    target: Target,
    conversations: int,
    simulator: Service,
    meter: Meter,
    rng: random.Random,
    window: contextlib.AbstractContextManager[Any] | None,
    tag: str,
) -> Phase:
    """``tag`` makes this phase's questions its own."""
    # A client of its own: the simulator closes connections left idle between phases.
    async with sdk_client(simulator.url) as client:
        model = PACE.model_on(simulator.url)
        return await _drive(target, conversations, client, model, meter, rng, window, tag)


async def _drive(
    target: Target,
    conversations: int,
    client: openai.AsyncOpenAI,
    model: str,
    meter: Meter,
    rng: random.Random,
    window: contextlib.AbstractContextManager[Any] | None,
    tag: str,
) -> Phase:
    turns: list[tuple[int, Turn]] = []
    stop, enough = asyncio.Event(), asyncio.Event()
    opened = math.inf
    counted = 0

    async def lane(index: int, relayed: bool, delay: float) -> None:
        nonlocal counted
        await asyncio.sleep(delay)
        for chain in itertools.count():
            if stop.is_set():
                return
            socket = await target.open(index) if relayed else DirectLane(client, model)
            try:
                for position in range(TURNS_PER_SOCKET):
                    name = f"{tag}{socket.path}{index}x{chain}x{position}"
                    turn = Turn(socket.path, message_text(name, REPLY_TOKENS), burst=PACE.burst)
                    turns.append((position, turn))
                    try:
                        await socket.turn(turn)
                    except (OSError, TimeoutError, openai.APIError, ConnectionClosed) as error:
                        turn.status = f"error: {type(error).__name__}"
                        break  # counted as incomplete; the lane goes on with a new socket
                    if relayed and turn.sent_at >= opened:
                        counted += 1
                        if counted >= MIN_TURNS:
                            enough.set()
                    if stop.is_set():
                        return
            finally:
                if not isinstance(socket, DirectLane):
                    await socket.close()

    lanes = [(index, True) for index in range(conversations)]
    lanes += [(index, False) for index in range(min(conversations, CONTROL_LANES))]
    async with asyncio.TaskGroup() as group:
        for index, relayed in lanes:
            group.create_task(lane(index, relayed, rng.uniform(0, SOCKET_SECONDS)))
        await asyncio.sleep(SOCKET_SECONDS)  # every lane has begun
        with window or contextlib.nullcontext():
            before, opened = meter.read(), time.time()
            await asyncio.sleep(WINDOW_SECONDS)
            await enough.wait()
            after, closed = meter.read(), time.time()
        stop.set()
    return Phase(turns, (opened, closed), usage(before, after), min(conversations, CONTROL_LANES))


async def reset(simulator: Service) -> None:
    """Forget the last phase's responses and request log (every socket of it is closed)."""
    async with httpx2.AsyncClient(timeout=60) as client:
        (await client.post(f"{simulator.url}/_simulator/reset")).raise_for_status()


async def measure(
    targets: list[Target],
    simulator: Service,
    meter: Meter,
    levels: list[int],
    seed: int,
    profiling: bool,
) -> dict[str, Any]:
    rng = random.Random(seed)
    ladder: dict[str, list[dict[str, Any]]] = {target.role: [] for target in targets}
    profiles: list[dict[str, Any]] = []
    plan: list[tuple[int, str]] = [(level, "") for level in levels]
    if profiling:
        plan += [(level, "py-spy") for level in PROFILE_LEVELS]
        plan += [(level, "cprofile") for level in CPROFILE_LEVELS]
    for conversations, profiler in plan:
        for target in targets:
            if profiler == "cprofile" and target.role != "app":
                continue
            print(
                f"\n{target.role}: {conversations} conversations"
                f"{f' ({profiler})' if profiler else ''} ...",
                flush=True,
            )
            label = f"short-{conversations}"
            py_spy = profiler == "py-spy"
            profile = Profile(target.service, label, rate=PROFILE_RATE) if py_spy else None
            window: contextlib.AbstractContextManager[Any] | None = profile
            if profiler == "cprofile":
                window = by_package = PackageProfile(target.service.name)
            tag = f"{target.name}{conversations}{profiler.replace('-', '')}"
            phase = await drive(target, conversations, simulator, meter, rng, window, tag)
            received = await received_times(simulator.url)
            figures = phase_figures(target.name, target.role, conversations, phase, received, PACE)
            await reset(simulator)
            report(figures)
            if not profiler:
                ladder[target.role].append(figures)
                continue
            figures["profiler"] = profiler
            if profiler == "cprofile":
                figures["by_package"] = by_package.summary()
                print_packages(figures["by_package"])
            elif profile is not None:
                seconds = phase.window[1] - phase.window[0]
                figures["profile"] = profile.summary()
                if figures["relay"] == "app":
                    figures["per_turn"] = turn_profile.per_turn(
                        profile.path,
                        rate=PROFILE_RATE,
                        turns=figures["turns"],
                        app_cpu_seconds=figures["relay_cpu_cores"] * seconds,
                    )
                    print_parts(figures["per_turn"])
            profiles.append(figures)
    return {
        "levels": ladder,
        "capacity": {name: capacity(steps) for name, steps in ladder.items()},
        "profiled": profiles,
    }


def main() -> None:
    parser = common_arguments(__doc__ or "", load=True)
    parser.add_argument(
        "--levels",
        type=int,
        nargs="*",
        default=list(LEVELS),
        help="conversations per relay (none: only the --profile windows)",
    )
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    args = parser.parse_args()
    started = time.monotonic()
    stack = stack_from("short_replies", args)
    with running_stack(stack):
        from bench import data  # the models load once the bench settings are in place

        simulator = stack.start_simulator()
        deployment = data.add_deployment(simulator, "Simulator", PACE.options)
        users = data.create_users(USERS)
        per_user = sum(math.ceil(n / USERS) * sockets_needed(n) for n in args.levels)
        if args.profile:
            per_user += sum(math.ceil(n / USERS) * sockets_needed(n) for n in PROFILE_LEVELS)
        created = [data.create_conversations([user], deployment, per_user) for user in users]
        targets: list[Target] = []
        if "app" in args.targets:
            hook = package_profile.settings_for(f"{stack.name}-app") if args.profile else None
            app = stack.start_app(hook)
            pools = [deque(data.signed_in_pages(app, owned)) for owned in created]
            targets.append(app_target(app, pools))
        if "floor" in args.targets:
            targets.append(floor_target(stack.start_floor(PACE.model_on(simulator.url))))
        freeze_heap()
        figures = asyncio.run(
            measure(targets, simulator, Meter(stack), args.levels, args.seed, args.profile),
            loop_factory=uvloop.new_event_loop,
        )
        print(f"\ncapacity: {figures['capacity']}")
        write_results(
            stack,
            started,
            figures,
            conditions={
                **stack.conditions(),
                "simulator": f"ttft {PACE.ttft_ms} ms, {DELTAS} deltas of {PACE.burst} tokens "
                f"at {PACE.tps / PACE.burst:g} deltas/s, echo",
                "loop": f"closed: {TURNS_PER_SOCKET} chained turns per socket, no think time, "
                "then a new socket and conversation",
                "window": f"from {SOCKET_SECONDS:.1f} s for {WINDOW_SECONDS:g} s (at least "
                f"{MIN_TURNS} turns sent)",
                "floor": "bench/floor.py: Starlette websocket route, openai SDK raw streaming "
                "response, text deltas only, pinned like the app",
                "direct_baseline": f"min(N, {CONTROL_LANES}) SDK conversations in every window",
                "users": USERS,
            },
        )


if __name__ == "__main__":
    main()
