"""The event stream of one response, as a plain generator of encoded SSE events and pauses.

The generator is the simulated model: it advances the stored response as it goes (status, text
so far) and says when to pause, stall or drop the line. Whoever consumes it decides what a pause
means: a live stream sleeps and sends, a non-streaming request only sleeps, a background
response keeps the events for later replays. Events are encoded once, cheaply: text deltas,
the bulk of every stream, from a byte template rather than a dict.
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from azure_sim.composing import stream_tokens
from azure_sim.objects import (
    message_item,
    output_text_part,
    reasoning_item,
    response_object,
    summary_part,
)
from azure_sim.options import GENERATION_FAULTS, Fault, Options
from azure_sim.store import KeptResponse


@dataclass(frozen=True, slots=True)
class Wait:
    """Send nothing more before ``until`` (a ``time.monotonic()`` instant)."""

    until: float


class Hold:
    """Stop sending but keep the connection open and idle (a stalled upstream)."""


class Drop:
    """Close the connection without a terminal event (a cut line)."""


HOLD = Hold()
DROP = Drop()

Step = bytes | Wait | Hold | Drop


class Pacer:
    """Deadlines for deltas: the first after the time to first token, then one per interval."""

    def __init__(self, start: float, options: Options) -> None:
        self._next = start + options.ttft_ms / 1000
        self._interval = options.delta_interval
        self.paced = options.ttft_ms > 0 or self._interval > 0

    def tick(self) -> Wait:
        wait = Wait(self._next)
        self._next += self._interval
        return wait


class Encoder:
    """Numbers events from 0 and encodes them as ``event:``/``data:`` SSE frames."""

    def __init__(self) -> None:
        self.sequence = 0

    def event(self, event_type: str, **fields: Any) -> bytes:
        payload = {"type": event_type, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        data = json.dumps(payload, separators=(",", ":"))
        return f"event: {event_type}\ndata: {data}\n\n".encode()

    def text_delta_template(self, item_id: str, output_index: int) -> bytes:
        return (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            b'"item_id":"%s","output_index":%d,"content_index":0,"logprobs":[],"delta":'
            % (item_id.encode(), output_index)
        )

    def text_delta(self, template: bytes, delta: str) -> bytes:
        # `sim_sent_at` lets latency benchmarks measure the time from here to the browser.
        tail = b',"sequence_number":%d,"sim_sent_at":%f}\n\n' % (self.sequence, time.time())
        self.sequence += 1
        return template + json.dumps(delta).encode() + tail


def _chunks(tokens: tuple[str, ...], size: int) -> list[str]:
    return ["".join(tokens[index : index + size]) for index in range(0, len(tokens), size)]


def _reasoning_events(
    response: KeptResponse, encoder: Encoder, pacer: Pacer, options: Options
) -> Iterator[Step]:
    plan = response.plan
    item_id = response.reasoning_id
    encrypted = "reasoning.encrypted_content" in response.params["include"]
    response.items_added = 1
    yield encoder.event(
        "response.output_item.added",
        output_index=0,
        item=reasoning_item(item_id, None, encrypted=False),
    )
    if plan.summary:
        place = {"item_id": item_id, "output_index": 0, "summary_index": 0}
        yield encoder.event("response.reasoning_summary_part.added", **place, part=summary_part(""))
        for delta in _chunks(stream_tokens(plan.summary), options.burst):
            if pacer.paced:
                yield pacer.tick()
            yield encoder.event("response.reasoning_summary_text.delta", **place, delta=delta)
        yield encoder.event("response.reasoning_summary_text.done", **place, text=plan.summary)
        yield encoder.event(
            "response.reasoning_summary_part.done", **place, part=summary_part(plan.summary)
        )
    response.items_done = 1
    yield encoder.event(
        "response.output_item.done",
        output_index=0,
        item=reasoning_item(item_id, plan.summary, encrypted=encrypted),
    )


_FAILURE = {"code": "server_error", "message": "The model failed to generate a response."}
_STREAM_ERROR = {
    "type": "server_error",
    "code": "server_error",
    "message": "The server had an error while processing your request.",
    "param": None,
}
_STREAM_FAULTS = GENERATION_FAULTS | {Fault.STALL, Fault.CUT}


def _fault_events(response: KeptResponse, encoder: Encoder, options: Options) -> Iterator[Step]:
    """End the stream the way ``options.fault`` asks, after some text was sent."""
    match options.fault:
        case Fault.STALL:
            yield HOLD
        case Fault.CUT:
            yield DROP
        case Fault.CONTENT_FILTER_OUTPUT:
            response.filtered_category = options.category
            response.finish("incomplete", incomplete_reason="content_filter")
            yield encoder.event("response.incomplete", response=response_object(response))
        case Fault.FAILED:
            response.finish("failed", error=dict(_FAILURE))
            yield encoder.event("response.failed", response=response_object(response))
        case Fault.ERROR_EVENT:
            response.stream_error = dict(_STREAM_ERROR)
            response.finish("failed", error=dict(_FAILURE))
            yield encoder.event(
                "error",
                code=_STREAM_ERROR["code"],
                message=_STREAM_ERROR["message"],
                param=None,
            )
        case Fault.ERROR_EVENT_NESTED:
            response.stream_error = dict(_STREAM_ERROR)
            response.finish("failed", error=dict(_FAILURE))
            yield encoder.event("error", error=_STREAM_ERROR)


def response_events(response: KeptResponse, options: Options, *, start: float) -> Iterator[Step]:
    """Every step of ``response``'s stream, from ``response.created`` to its terminal event."""
    encoder = Encoder()
    pacer = Pacer(start, options)
    plan = response.plan
    yield encoder.event("response.created", response=response_object(response))
    if response.background:
        yield encoder.event("response.queued", response=response_object(response))
    response.status = "in_progress"
    yield encoder.event("response.in_progress", response=response_object(response))
    if plan.reasons:
        yield from _reasoning_events(response, encoder, pacer, options)

    output_index = response.items_added
    place = {"item_id": response.message_id, "output_index": output_index, "content_index": 0}
    response.items_added += 1
    yield encoder.event(
        "response.output_item.added",
        output_index=output_index,
        item=message_item(response.message_id, None, "in_progress"),
    )
    yield encoder.event("response.content_part.added", **place, part=output_text_part(""))

    fault = options.fault if options.fault in _STREAM_FAULTS else None
    template = encoder.text_delta_template(response.message_id, output_index)
    tokens = stream_tokens(plan.text)
    for sent, delta in enumerate(_chunks(tokens, options.burst)):
        if fault is not None and sent == options.after:
            yield from _fault_events(response, encoder, options)
            return
        if pacer.paced:
            yield pacer.tick()
        response.delivered += min(options.burst, len(tokens) - response.delivered)
        response.delivered_chars += len(delta)
        yield encoder.text_delta(template, delta)
    if fault is not None:
        yield from _fault_events(response, encoder, options)
        return

    text = response.text
    yield encoder.event("response.output_text.done", **place, text=text, logprobs=[])
    yield encoder.event("response.content_part.done", **place, part=output_text_part(text))
    if not plan.truncated:
        response.items_done = response.items_added
    status = "incomplete" if plan.truncated else "completed"
    yield encoder.event(
        "response.output_item.done",
        output_index=output_index,
        item=message_item(response.message_id, text, status),
    )
    if plan.truncated:
        response.finish("incomplete", incomplete_reason="max_output_tokens")
        yield encoder.event("response.incomplete", response=response_object(response))
    else:
        response.finish("completed")
        yield encoder.event("response.completed", response=response_object(response))
