"""Where a turn's CPU goes: py-spy's samples of the app (GIL holder only) sorted into the parts
of a turn, in milliseconds of GIL time per turn.

A sample counts towards every part whose function is on its stack (so a part includes what it
calls, and parts may overlap where one calls another: markdown rendering happens inside saving
the reply). The database work runs on the thread that ``database_sync_to_async`` calls share;
everything else runs on the event loop (the main thread).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import py_spy_samples

# (label, frames): a sample belongs to the part when one of these frames is on its stack.
Frame = tuple[str, str]  # function, file; an empty function matches any function of the file
PARTS: tuple[tuple[str, tuple[Frame, ...]], ...] = (
    ("opening the socket (sign-in check, consumer.connect, catch-up)", (
        ("get_user", "channels/auth.py"),
        ("connect", "chat/consumers.py"),
        ("owned_conversation", "chat/tab_views.py"),
        ("catch_up", "chat/tab_views.py"),
    )),
    ("saving the turn (services.turn_start)", (("turn_start", "chat/services.py"),)),
    ("the turn's fragments (tab_views.turn_fragment)", (("turn_fragment", "chat/tab_views.py"),)),
    ("the reply's first database work (runner.reply_prepare)", (
        ("_prepare", "chat/replies/runner.py"),
        ("reply_prepare", "chat/replies/runner.py"),
    )),
    ("the ledger row (ledger.ledger_record)", (("ledger_record", "chat/ledger.py"),)),
    ("usage, quota (usage, rate_limits)", (("", "chat/usage.py"), ("", "chat/rate_limits.py"))),
    ("saving the reply (saving.reply_finish)", (("reply_finish", "chat/saving.py"),)),
    ("markdown rendering (rendering.render_markdown)", (("render_markdown", "chat/rendering.py"),)),
    ("the final render (reply._finish on the loop)", (("_finish", "chat/replies/reply.py"),)),
    ("copies deleted (ledger_delete_orphan)", (("ledger_delete_orphan", "chat/ledger.py"),)),
    ("the lease (saving.reply_renew_lease)", (("reply_renew_lease", "chat/saving.py"),)),
    ("reading the stream (chat/llm/streaming.py)", (("", "chat/llm/streaming.py"),)),
    ("relaying deltas (chat/replies/relay.py)", (("", "chat/replies/relay.py"),)),
)  # fmt: skip
APP_PACKAGES = ("chat/", "accounts/", "config/")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(text: str) -> Frame:
    match = _FRAME.match(text)
    return (match["function"], match["file"]) if match else (text, "")


def _matches(frame: Frame, wanted: Frame) -> bool:
    function, file = frame  # py-spy names methods by their qualified name: Runner._prepare
    name = function.rsplit(".", 1)[-1]
    return file.endswith(wanted[1]) and (not wanted[0] or name == wanted[0])


def per_turn(path: Path, *, rate: int, turns: int, app_cpu_seconds: float) -> dict[str, Any]:
    """Milliseconds of GIL time per turn: in all, by thread, by part of a turn, and the app's
    own functions (inclusive) and every function (self) that take the most."""
    samples = 0
    threads: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    app_functions: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for texts, weight in py_spy_samples(path):
        samples += weight
        frames = [_frame(text) for text in texts]
        worker = frames[0][0].endswith("_bootstrap")  # a pool's thread: the database's
        threads["database thread" if worker else "event loop"] += weight
        for label, wanted in PARTS:
            if any(_matches(frame, one) for frame in frames for one in wanted):
                parts[label] += weight
        for name in {f"{function} ({file})" for function, file in frames if _in_app(file)}:
            app_functions[name] += weight
        own[f"{frames[-1][0]} ({frames[-1][1]})"] += weight

    def ms(count: int) -> float:
        return round(count / rate * 1000 / turns, 3) if turns else 0.0

    return {
        "turns": turns,
        "samples": samples,
        "rate_hz": rate,
        "file": str(path),
        "gil_ms_per_turn": ms(samples),
        "app_cpu_ms_per_turn": round(app_cpu_seconds * 1000 / turns, 3) if turns else 0.0,
        "by_thread_ms_per_turn": {name: ms(count) for name, count in threads.most_common()},
        "parts_ms_per_turn": {label: ms(parts[label]) for label, _ in PARTS},
        "app_functions_inclusive_ms_per_turn": [
            [name, ms(count)] for name, count in app_functions.most_common(30)
        ],
        "functions_self_ms_per_turn": [[name, ms(count)] for name, count in own.most_common(25)],
    }


def _in_app(file: str) -> bool:
    return file.startswith(APP_PACKAGES) or any(f"/{package}" in file for package in APP_PACKAGES)
