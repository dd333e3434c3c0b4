"""What a phase of the short-reply benchmark says: its figures, the capacity point of a
ladder of them, and the lines printed as it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.harness import difference, table
from bench.lanes import Pace, Turn, timings

LAG_LIMIT_MS = 50.0


@dataclass(slots=True)
class Phase:
    """One relay at one level: every turn with its place in its socket's chain, and the
    window's readings."""

    turns: list[tuple[int, Turn]]
    window: tuple[float, float]
    used: dict[str, Any]
    direct_lanes: int


def _split(figures: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    return {
        "relay_first_token_ms": figures["first_token_ms"],
        "direct_first_token_ms": direct["first_token_ms"],
        "added_first_token_ms": difference(figures["first_token_ms"], direct["first_token_ms"]),
    }


def phase_figures(
    path: str,
    role: str,
    conversations: int,
    phase: Phase,
    received: dict[str, float],
    pace: Pace,
) -> dict[str, Any]:
    """A phase's figures: first token and lag of the turns sent in the window, against the
    direct conversations beside them; CPU and throughput of the deltas that arrived in it."""
    low, high = phase.window
    counted = [(position, t) for position, t in phase.turns if low <= t.sent_at < high]
    whole = timings([t for _, t in counted], pace, received)
    first = timings([t for position, t in counted if position == 0], pace, received)
    later = timings([t for position, t in counted if position > 0], pace, received)
    arrived = timings([t for _, t in phase.turns], pace, received, phase.window)
    relay, direct = whole[path].figures(), whole["direct"].figures()
    seconds = high - low
    cores = phase.used["cpu_cores"][role]
    deltas = arrived[path].deltas
    cpu_ms_per_delta = cores * seconds / deltas * 1000 if deltas else None
    figures: dict[str, Any] = {
        "relay": role,
        "conversations": conversations,
        "direct_conversations": phase.direct_lanes,
        "window_s": round(seconds, 2),
        "turns": relay["turns"],
        "first_turns_counted": first[path].turns,
        "later_turns_counted": later[path].turns,
        "added_first_token_ms": difference(relay["first_token_ms"], direct["first_token_ms"]),
        "added_first_token_first_turns_ms": difference(
            first[path].figures()["first_token_ms"],
            first["direct"].figures()["first_token_ms"],
        ),
        "added_first_token_later_turns_ms": difference(
            later[path].figures()["first_token_ms"],
            later["direct"].figures()["first_token_ms"],
        ),
        "added_delta_lag_ms": difference(relay["delta_lag_ms"], direct["delta_lag_ms"]),
        "deltas_in_window": deltas,
        "frames_in_window": arrived[path].frames,
        "relayed_deltas_per_s": round(deltas / seconds),
        "relay_cpu_cores": cores,
        "cpu_ms_per_delta_all_in": round(cpu_ms_per_delta, 4) if cpu_ms_per_delta else None,
        "deltas_per_s_per_core": round(deltas / seconds / cores) if cores else None,
        "relay_figures": relay,
        "direct_figures": direct,
        "first_token_first_turns": _split(first[path].figures(), first["direct"].figures()),
        "first_token_later_turns": _split(later[path].figures(), later["direct"].figures()),
        "usage": phase.used,
    }
    if role == "app" and deltas:
        with_postgres = (cores + phase.used["cpu_cores"]["postgres"]) * seconds / deltas
        figures["cpu_ms_per_delta_with_postgres"] = round(with_postgres * 1000, 4)
    return figures


def capacity(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The capacity point: the largest level held with every lower level held too; and the
    largest level held at all (a noisy machine can fail one step and pass the next)."""
    held, every_lower = [], True
    for step in sorted(steps, key=lambda step: step["conversations"]):
        lag = step["added_delta_lag_ms"].get("p99")
        within = lag is not None and lag <= LAG_LIMIT_MS
        if within and not step["relay_figures"].get("incomplete_turns"):
            held.append((step["conversations"], every_lower))
        else:
            every_lower = False
    return {
        "conversations_held_within_50ms_added_lag_p99": max(
            (n for n, lower in held if lower), default=0
        ),
        "largest_level_within_50ms_added_lag_p99": max((n for n, _ in held), default=0),
        "levels_measured": [step["conversations"] for step in steps],
    }


def report(figures: dict[str, Any]) -> None:
    first, lag = figures["added_first_token_ms"], figures["added_delta_lag_ms"]
    rows = [
        [
            figures["relay"],
            figures["conversations"],
            figures["turns"],
            f"{first.get('p50')}/{first.get('p99')}",
            f"{figures['added_first_token_first_turns_ms'].get('p50')}"
            f"/{figures['added_first_token_later_turns_ms'].get('p50')}",
            lag.get("p99"),
            figures["relay_cpu_cores"],
            figures["cpu_ms_per_delta_all_in"],
            figures["deltas_per_s_per_core"],
            figures["usage"]["cpu_cores"]["simulator"],
            figures["usage"]["cpu_cores"]["driver"],
            figures["usage"]["other_processes_cpu_cores"],
        ]
    ]
    header = [
        "relay",
        "conv",
        "turns",
        "+first token p50/p99",
        "+p50 first/later turns",
        "+lag p99",
        "cores",
        "ms/delta",
        "deltas/s/core",
        "sim",
        "driver",
        "others",
    ]
    print(table(rows, header), flush=True)
    if figures["relay_figures"].get("incomplete_turns"):
        print(f"incomplete: {figures['relay_figures']['incomplete_examples']}")


def print_parts(per_turn: dict[str, Any]) -> None:
    print(
        f"per turn: GIL {per_turn['gil_ms_per_turn']} ms, app CPU "
        f"{per_turn['app_cpu_ms_per_turn']} ms, {per_turn['by_thread_ms_per_turn']}"
    )
    for label, ms in per_turn["parts_ms_per_turn"].items():
        print(f"  {ms:7.3f} ms  {label}")


def print_packages(by_package: dict[str, Any]) -> None:
    print(f"CPU by package (cProfile, {by_package['cpu_seconds_profiled']} s, waits left out):")
    for package, percent in by_package["package_percent"][:15]:
        print(f"  {percent:5.1f}%  {package}")
