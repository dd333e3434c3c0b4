"""The relays a benchmark measures side by side: the app (its conversation page's socket) and
the floor (``bench/floor.py``, the minimal relay), each a service and a way to open a socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.harness import Service
from bench.lanes import FloorLane, Page, RelayLane

Socket = RelayLane | FloorLane


@dataclass(slots=True)
class Target:
    """A relay under test: its process and how lane ``i`` opens a fresh socket to it."""

    name: str  # the lanes' path: "relay" (the app's page) or "floor"
    service: Service
    open: Callable[[int], Awaitable[Socket]]

    @property
    def role(self) -> str:
        return self.service.name.rsplit("-", 1)[1]  # "app" or "floor", as the meter names it


def floor_target(floor: Service) -> Target:
    async def open_socket(lane: int) -> Socket:
        return await FloorLane.open(floor.url)

    return Target("floor", floor, open_socket)


def page_target(app: Service, pages: list[Page]) -> Target:
    """The app, lane ``i`` opening page ``i``."""

    async def open_socket(lane: int) -> Socket:
        return await RelayLane.open(app.url, pages[lane])

    return Target("relay", app, open_socket)
