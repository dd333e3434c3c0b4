"""What tests steer and inspect: programmed faults and the log of received requests."""

import itertools
import time
from collections import Counter, deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from azure_sim.options import GENERATION_FAULTS, OptionError, Options, apply_options

OPS = frozenset({"create", "retrieve", "delete", "cancel", "input_items"})
SECRET_HEADERS = frozenset({"api-key", "authorization", "cookie", "proxy-authorization"})


@dataclass(slots=True)
class ProgrammedFault:
    id: str
    op: str
    deployment: str | None
    options: dict[str, Any]  # simulator options, the fault among them
    remaining: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "model": self.deployment,
            "times": self.remaining,
            **self.options,
        }


class FaultBook:
    """Faults waiting for matching requests, and counters for faults limited with ``times``."""

    def __init__(self) -> None:
        self._programmed: list[ProgrammedFault] = []
        self._inline_counts: Counter[Hashable] = Counter()
        self._ids = itertools.count(1)

    def program(self, spec: Mapping[str, Any], defaults: Options) -> ProgrammedFault:
        spec = dict(spec)
        op = spec.pop("op", "create")
        if op not in OPS:
            raise OptionError(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
        deployment = spec.pop("model", None)
        if deployment is not None and not isinstance(deployment, str):
            raise OptionError("model must be a deployment name")
        times = spec.pop("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise OptionError("times must be a whole number of at least 1")
        if "fault" not in spec:
            raise OptionError("name the fault to program, e.g. {'fault': 'rate_limit'}")
        checked = apply_options(defaults, spec, source="the programmed fault")
        if op != "create" and checked.fault in GENERATION_FAULTS:
            raise OptionError(f"fault {checked.fault} happens only while creating a response")
        fault = ProgrammedFault(
            id=f"fault_{next(self._ids)}",
            op=op,
            deployment=deployment,
            options=spec,
            remaining=times,
        )
        self._programmed.append(fault)
        return fault

    def take(self, op: str, deployment: str) -> dict[str, Any] | None:
        """Use up one turn of the oldest fault programmed for this op and deployment."""
        for fault in self._programmed:
            if fault.op == op and fault.deployment in (None, deployment):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._programmed.remove(fault)
                return fault.options
        return None

    def fires_inline(self, key: Hashable, times: int) -> bool:
        """Whether a fault asked for in the request itself, limited to ``times``, fires again."""
        self._inline_counts[key] += 1
        return self._inline_counts[key] <= times

    def pending(self) -> list[dict[str, Any]]:
        return [fault.describe() for fault in self._programmed]

    def clear(self) -> None:
        self._programmed.clear()
        self._inline_counts.clear()


class RequestLog:
    """The most recent requests received, with credentials left out."""

    def __init__(self, *, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def record(
        self,
        *,
        method: str,
        path: str,
        op: str | None,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> dict[str, Any]:
        entry = {
            "time": time.time(),
            "method": method,
            "path": path,
            "op": op,
            "query": {name: values[-1] for name, values in query.items()},
            "auth": _auth_kind(headers),
            "headers": {
                name: value for name, value in headers.items() if name not in SECRET_HEADERS
            },
            "json": body,
            "status": None,
        }
        self._entries.append(entry)
        return entry

    def entries(self, op: str | None = None) -> list[dict[str, Any]]:
        return [entry for entry in self._entries if op is None or entry["op"] == op]

    def clear(self) -> None:
        self._entries.clear()


def _auth_kind(headers: dict[str, str]) -> str | None:
    if "api-key" in headers:
        return "api-key"
    if headers.get("authorization", "").lower().startswith("bearer "):
        return "bearer"
    return None
