"""The two clients measured side by side, and what their timings say.

``RelayLane`` does what the conversation page does: one websocket to the conversation (session
cookie, ``Origin``), the composer's JSON frame, HTML fragments back. ``DirectLane`` asks the
simulator for the same reply with the ``openai`` SDK, as the app's gateway does (the SDK's raw
streaming response, only the data lines parsed). Both keep the arrival time of every text delta.

Replies are the user's own text echoed back (the simulator's ``echo`` option), so a client knows
where every delta ends in the text and can time each one, even after the relay has merged
several into one frame; the page's deltas are found by the letters they show, since
live markdown shows them rendered. The simulator paces deltas on an absolute schedule from the
moment it received the request (its request log has that moment), so every delta has a
scheduled send time: the lag of a delta is its arrival minus that time, for both clients alike.
The direct client also sees the simulator's own ``sim_sent_at`` stamp on each delta, which
checks the schedule. Deltas that a reply's final render brings count as arriving with it.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
import openai
from websockets.asyncio.client import ClientConnection, connect

from azure_sim.composing import compose_reply, seed_for, split_tokens
from bench.harness import SIMULATOR_KEY, cookie_header, summary

DELTA_FRAME = re.compile(
    r'<span id="message-(\d+)-more" hx-swap-oob="beforeend">(.*?)</span>', re.S
)
# A live markdown render: the blocks just finished, then the growing block again.
RENDER_FRAME = re.compile(r'<div id="message-(\d+)-tail" hx-swap-oob="innerHTML">')
_TAG = re.compile(r"<[^>]*>")


def visible_chars(text: str) -> int:
    """The letters a reader sees of ``text``: the same whether the relay shows it as raw
    markdown (an appended delta) or rendered (markers, list numbers and whitespace gone), so
    each delta can be found in the page however it was shown."""
    return sum(character.isalpha() for character in text)


_BUTTON = re.compile(r"<button\b.*?</button>", re.S)


def shown_chars(fragment: str) -> int:
    """How many letters of the reply a fragment shows (a code block's Copy button is the
    page's, not the reply's)."""
    return visible_chars(html.unescape(_TAG.sub("", _BUTTON.sub("", fragment))))


REPLY_STATUS = re.compile(
    r'<article id="message-(\d+)" class="message message-assistant status-(\w+)"'
)
REFUSAL = re.compile(r'<div class="alert alert-\w+" role="alert">(.*?)</div>', re.S)
IN_FLIGHT = frozenset({"pending", "streaming"})
TEXT_DELTA = "response.output_text.delta"
TERMINAL = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
    "error": "failed",
}
TURN_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Pace:
    """How the simulated model answers: time to first token, tokens per second, and tokens per
    delta (``burst``)."""

    ttft_ms: int
    tps: float
    burst: int = 1

    @property
    def options(self) -> str:
        burst = f",burst={self.burst}" if self.burst != 1 else ""
        return f"ttft_ms={self.ttft_ms},tps={self.tps:g}{burst},echo"

    def model_on(self, simulator_url: str) -> str:
        """The simulator deployment that streams at this pace (registered there)."""
        from bench.data import simulated_deployment

        return simulated_deployment(simulator_url, self.options)

    def seconds(self, tokens: int) -> float:
        return self.ttft_ms / 1000 + tokens / self.tps

    def scheduled(self, received_at: float, index: int) -> float:
        return received_at + self.ttft_ms / 1000 + index * self.burst / self.tps


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def message_text(tag: str, tokens: int) -> str:
    """A unique markdown message of exactly ``tokens`` deltas (the simulator's tokens).

    Without links: the page shows a link's text only, and its target until the link is
    complete, so no count of what the page shows could place the deltas inside one."""
    reply = _LINK.sub(r"\1", compose_reply(seed_for(tag), tokens))
    pieces = split_tokens(f"{tag} {reply}")
    return "".join(pieces[:tokens])


def delta_ends(text: str, burst: int = 1, *, measure: Callable[[str], int] = len) -> list[int]:
    """Where each delta of the echoed ``text`` ends, ``burst`` tokens to a delta, in
    ``measure`` of the text up to it (characters; for the page, ``visible_chars``): a count
    that adds up over the pieces."""
    ends = list(itertools.accumulate(measure(piece) for piece in split_tokens(text)))
    return ends[burst - 1 :: burst] + (ends[-1:] if len(ends) % burst else [])


@dataclass(slots=True)
class Turn:
    """One question and its reply, filled in by a lane as the reply arrives."""

    path: str  # "relay", "floor" or "direct"
    text: str
    burst: int = 1  # tokens per delta
    sent_at: float = 0.0
    arrivals: list[float] = field(default_factory=list)  # per delta
    frames: list[float] = field(default_factory=list)  # arrival of each frame carrying text
    stamps: list[float] = field(default_factory=list)  # direct only: the simulator's sim_sent_at
    status: str = ""
    done_at: float = 0.0
    stray_frames: int = 0  # relay: frames about another reply than this turn's
    # Relay: deltas that show no letter (a space, a markdown marker, a number): the page gives
    # no sign of their arrival, so they have no lag of their own.
    unseen: frozenset[int] = frozenset()

    @property
    def complete(self) -> bool:
        return self.status == "completed" and len(self.arrivals) == len(
            delta_ends(self.text, self.burst)
        )


@dataclass(frozen=True, slots=True)
class Page:
    """A conversation page as its owner opens it, signed in."""

    conversation_id: int
    cookies: dict[str, str]


class Lane(Protocol):
    path: str

    async def turn(self, record: Turn) -> None: ...


class RelayLane:
    """One conversation page: its websocket, used for every turn of the conversation."""

    path = "relay"

    def __init__(self, socket: ClientConnection, page_url: str, csrf_token: str) -> None:
        self.socket = socket
        self.page_url = page_url
        self.csrf_token = csrf_token

    @classmethod
    async def open(cls, app_url: str, page: Page) -> RelayLane:
        socket = await connect(
            f"{app_url.replace('http', 'ws', 1)}/ws/conversations/{page.conversation_id}/",
            origin=app_url,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie_header(page.cookies)},
            max_size=None,
            open_timeout=120,
            ping_interval=None,
        )
        return cls(socket, f"{app_url}/c/{page.conversation_id}/", page.cookies["csrftoken"])

    def _payload(self, text: str) -> str:
        # What htmx's ws extension sends for the composer form: its fields and HEADERS.
        return json.dumps(
            {
                "csrfmiddlewaretoken": self.csrf_token,
                "text": text,
                "client_id": str(uuid.uuid4()),
                "HEADERS": {
                    "HX-Request": "true",
                    "HX-Trigger": "composer",
                    "HX-Trigger-Name": None,
                    "HX-Target": "composer",
                    "HX-Current-URL": self.page_url,
                },
            }
        )

    async def turn(self, record: Turn) -> None:
        """Send the question, then follow its reply by the reply's message id, as the page's
        swaps do."""
        ends = delta_ends(record.text, record.burst, measure=visible_chars)
        record.unseen = frozenset(
            index for index, end in enumerate(ends) if end == (ends[index - 1] if index else 0)
        )
        received = 0
        finished = 0
        reply_id = ""
        payload = self._payload(record.text)
        record.sent_at = time.time()
        await self.socket.send(payload)
        async with asyncio.timeout(TURN_TIMEOUT):
            while True:
                frame = await self.socket.recv()
                now = time.time()
                assert isinstance(frame, str)
                statuses = dict(REPLY_STATUS.findall(frame))
                if not reply_id:
                    reply_id = next((m for m, s in statuses.items() if s in IN_FLIGHT), "")
                deltas = DELTA_FRAME.findall(frame)
                pieces = [text for message_id, text in deltas if message_id == reply_id]
                render = RENDER_FRAME.search(frame)
                if len(pieces) < len(deltas) or statuses.keys() - {reply_id}:
                    record.stray_frames += 1
                if render is not None and render[1] == reply_id:
                    record.frames.append(now)
                    finished += shown_chars(frame[: render.start()])
                    received = finished + shown_chars(frame[render.end() :])
                elif pieces:
                    record.frames.append(now)
                    received += sum(visible_chars(html.unescape(piece)) for piece in pieces)
                # A delta arrives with the frame that shows its last letter, appended or
                # rendered (a block that closes is shown as a render).
                while len(record.arrivals) < len(ends) and ends[len(record.arrivals)] <= received:
                    record.arrivals.append(now)
                status = statuses.get(reply_id, "pending")
                if status not in IN_FLIGHT:
                    record.status, record.done_at = status, now
                    if status == "completed" and len(record.arrivals) < len(ends):
                        # Deltas not sent as such: the final render of the message brings them.
                        record.frames.append(now)
                        record.arrivals += [now] * (len(ends) - len(record.arrivals))
                    return
                refusal = REFUSAL.search(frame)
                if refusal is not None:
                    record.status, record.done_at = f"refused: {refusal[1]}", now
                    return

    async def close(self) -> None:
        await self.socket.close()


class FloorLane:
    """A socket to the floor (``bench/floor.py``): the question as JSON, each text delta as a
    text frame, the terminal status as a binary frame."""

    path = "floor"

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    async def open(cls, floor_url: str) -> FloorLane:
        socket = await connect(
            f"{floor_url.replace('http', 'ws', 1)}/ws",
            max_size=None,
            open_timeout=120,
            ping_interval=None,
        )
        return cls(socket)

    async def turn(self, record: Turn) -> None:
        ends = delta_ends(record.text, record.burst, measure=visible_chars)
        record.unseen = frozenset(
            index for index, end in enumerate(ends) if end == (ends[index - 1] if index else 0)
        )
        received = 0
        payload = json.dumps({"text": record.text})
        record.sent_at = time.time()
        await self.socket.send(payload)
        async with asyncio.timeout(TURN_TIMEOUT):
            while True:
                frame = await self.socket.recv()
                now = time.time()
                if isinstance(frame, bytes):
                    record.status, record.done_at = frame.decode(), now
                    return
                record.frames.append(now)
                received += visible_chars(frame)  # the measure its deltas' ends are in
                while len(record.arrivals) < len(ends) and ends[len(record.arrivals)] <= received:
                    record.arrivals.append(now)

    async def close(self) -> None:
        await self.socket.close()


class DirectLane:
    """The same conversation asked of the simulator directly, through the ``openai`` SDK."""

    path = "direct"

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self.client = client
        self.model = model
        self.previous: str | None = None

    async def turn(self, record: Turn) -> None:
        text = record.text
        body: dict[str, Any] = {
            "model": self.model,
            "input": text if self.previous else [{"role": "user", "content": text}],
            "instructions": "",
            "store": True,
            "stream": True,
        }
        if self.previous:
            body["previous_response_id"] = self.previous
        record.frames = record.arrivals  # every delta is a frame of its own
        record.sent_at = time.time()
        async with (
            asyncio.timeout(TURN_TIMEOUT),
            self.client.responses.with_streaming_response.create(**body) as response,
        ):
            async for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                now = time.time()
                data = json.loads(line[6:])
                kind = data.get("type")
                if kind == TEXT_DELTA:
                    record.arrivals.append(now)
                    record.stamps.append(data["sim_sent_at"])
                elif kind == "response.created":
                    self.previous = data["response"]["id"]
                elif kind in TERMINAL:
                    record.status, record.done_at = TERMINAL[kind], now


def sdk_client(simulator_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{simulator_url}/openai/v1/", api_key=SIMULATOR_KEY, max_retries=0
    )


def _input_text(body: dict[str, Any]) -> str | None:
    value = body.get("input")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        users = [item.get("content") for item in value if item.get("role") == "user"]
        return users[-1] if users and isinstance(users[-1], str) else None
    return None


async def received_times(simulator_url: str) -> dict[str, float]:
    """When the simulator received each create request, by the request's newest user text."""
    async with httpx2.AsyncClient(timeout=120) as client:
        answer = await client.get(f"{simulator_url}/_simulator/requests", params={"op": "create"})
    answer.raise_for_status()
    times: dict[str, float] = {}
    for entry in answer.json()["data"]:
        text = _input_text(entry.get("json") or {})
        if text is not None:
            times[text] = entry["time"]
    return times


@dataclass(slots=True)
class Timings:
    """Every measure of a set of turns of one path, in seconds."""

    first_token: list[float] = field(default_factory=list)
    model_called_after: list[float] = field(default_factory=list)
    delta_lag: list[float] = field(default_factory=list)
    stamp_lag: list[float] = field(default_factory=list)  # direct: arrival - sim_sent_at
    schedule_error: list[float] = field(default_factory=list)  # direct: sim_sent_at - schedule
    largest_gap: list[float] = field(default_factory=list)  # per turn, between text frames
    frames: int = 0
    deltas: int = 0
    turns: int = 0
    incomplete: list[str] = field(default_factory=list)
    unmatched: int = 0
    stray_frames: int = 0

    def add(
        self,
        turn: Turn,
        pace: Pace,
        received: dict[str, float],
        window: tuple[float, float] | None = None,
    ) -> None:
        """Take a whole turn's figures; with ``window``, only those of its deltas that arrived
        within it, whether the turn has ended or not."""
        low, high = window or (float("-inf"), float("inf"))
        if window is None and not turn.complete:
            self.incomplete.append(turn.status or "no terminal frame")
            return
        if not any(low <= arrived < high for arrived in turn.frames):
            return
        created = received.get(turn.text)
        if created is None:
            self.unmatched += 1
            return
        if window is None:
            self.turns += 1
            self.stray_frames += turn.stray_frames
            self.first_token.append(turn.arrivals[0] - turn.sent_at)
            self.model_called_after.append(created - turn.sent_at)
            gaps = [b - a for a, b in itertools.pairwise(turn.frames)]
            if gaps:
                self.largest_gap.append(max(gaps))
        for index, arrived in enumerate(turn.arrivals):
            if not low <= arrived < high:
                continue
            scheduled = pace.scheduled(created, index)
            self.deltas += 1
            if index in turn.unseen:
                continue
            self.delta_lag.append(arrived - scheduled)
            if turn.stamps:
                self.stamp_lag.append(arrived - turn.stamps[index])
                self.schedule_error.append(turn.stamps[index] - scheduled)
        self.frames += sum(1 for arrived in turn.frames if low <= arrived < high)

    def figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "turns": self.turns,
            "deltas": self.deltas,
            "frames": self.frames,
            "first_token_ms": summary(self.first_token),
            "model_called_after_ms": summary(self.model_called_after),
            "delta_lag_ms": summary(self.delta_lag),
            "largest_frame_gap_ms": summary(self.largest_gap),
        }
        if self.stamp_lag:
            figures["delta_lag_by_sim_stamp_ms"] = summary(self.stamp_lag)
            figures["simulator_schedule_error_ms"] = summary(self.schedule_error)
        if self.incomplete:
            figures["incomplete_turns"] = len(self.incomplete)
            figures["incomplete_examples"] = sorted(set(self.incomplete))[:5]
        if self.stray_frames:
            figures["frames_about_other_replies"] = self.stray_frames
        if self.unmatched:
            figures["turns_missing_from_simulator_log"] = self.unmatched
        return figures


def timings(
    turns: Iterable[Turn],
    pace: Pace,
    received: dict[str, float],
    window: tuple[float, float] | None = None,
) -> dict[str, Timings]:
    by_path = {"relay": Timings(), "floor": Timings(), "direct": Timings()}
    for turn in turns:
        by_path[turn.path].add(turn, pace, received, window)
    return by_path
